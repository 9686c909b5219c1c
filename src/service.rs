//! Running as a supervised service: the systemd notification protocol (`sd_notify`: readiness, watchdog pings,
//! status), SIGTERM and SIGINT turned into a clean shutdown, and logging to journald when systemd started us.
//!
//! Everything here is a no-op outside systemd: without `NOTIFY_SOCKET` nothing is sent, and without `JOURNAL_STREAM`
//! the log goes to the terminal as before. The signal thread ([`ShutdownSignals`]) is the only thread this module
//! starts; the notifications are sent from whichever thread calls (the UI thread for readiness and the watchdog, so
//! a hung UI stops the pings and systemd restarts the kiosk).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// Why a part of the service integration could not start.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The signal handlers for SIGTERM and SIGINT could not be installed.
    #[error("cannot handle SIGTERM and SIGINT: {0}")]
    Signals(#[source] std::io::Error),
    /// The thread waiting for the signals could not be started.
    #[error("cannot start the signal thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Tells systemd the service is ready (the kiosk: its window is shown). A failure to reach the socket is logged,
/// never fatal: the product runs the same without a supervisor.
pub fn notify_ready(status: &str) {
    send(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(status)]);
}

/// Sets the one-line status `systemctl status` shows (the applications waiting).
pub fn notify_status(status: &str) {
    send(&[sd_notify::NotifyState::Status(status)]);
}

/// Tells systemd the service is stopping (sent when a signal asked for it).
pub fn notify_stopping() {
    send(&[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::Status("stopping")]);
}

/// One watchdog ping.
pub fn notify_watchdog() {
    send(&[sd_notify::NotifyState::Watchdog]);
}

fn send(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::debug!("cannot notify the service manager: {e}");
    }
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, or `None` when systemd asks for no pings.
///
/// systemd sets `WATCHDOG_PID` to the unit's main process. Under the `cage` compositor that is cage, whose child we
/// are (the unit has `NotifyAccess=all` so systemd takes the child's pings), so the pings are ours to send when
/// `WATCHDOG_PID` is this process or its parent. (`sd_notify::watchdog_enabled` only accepts this process.)
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        let pid: u32 = pid.trim().parse().ok()?;
        // SAFETY: getppid has no preconditions and cannot fail.
        let parent = unsafe { libc::getppid() } as u32;
        if pid != std::process::id() && pid != parent {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(100)))
}

/// SIGTERM and SIGINT, waited for on a thread of their own: the first one sets the flag and calls the action (the
/// kiosk quits its event loop; `queue drain` stops waiting); a second one is logged. Dropping it restores nothing
/// (the process is ending) but stops the thread.
pub struct ShutdownSignals {
    received: Arc<AtomicI32>,
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl ShutdownSignals {
    /// Installs the handlers; `on_signal` runs on the signal thread with the signal's name, once.
    pub fn install(on_signal: impl Fn(&'static str) + Send + 'static) -> Result<ShutdownSignals, ServiceError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(ServiceError::Signals)?;
        let handle = signals.handle();
        let received = Arc::new(AtomicI32::new(0));
        let seen = received.clone();
        let thread = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    let name = signal_name(sig);
                    if seen.swap(sig, Ordering::SeqCst) != 0 {
                        log::warn!("{name} again: already stopping");
                        continue;
                    }
                    log::info!("{name} received: stopping cleanly");
                    notify_stopping();
                    on_signal(name);
                }
            })
            .map_err(ServiceError::Thread)?;
        Ok(ShutdownSignals { received, handle, thread: Some(thread) })
    }

    /// The name of the signal that asked for the stop, if one did.
    pub fn received(&self) -> Option<&'static str> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(signal_name(s)),
        }
    }

    /// A flag that turns true when a signal arrives (for loops that poll).
    pub fn flag(&self) -> SignalFlag {
        SignalFlag(self.received.clone())
    }
}

/// Whether SIGTERM or SIGINT has arrived (see [`ShutdownSignals::flag`]).
#[derive(Clone)]
pub struct SignalFlag(Arc<AtomicI32>);

impl SignalFlag {
    /// True once a signal has arrived.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }
}

impl Drop for ShutdownSignals {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// A last resort once a stop was asked for: if the process is still alive after `deadline` (a thread blocked in a
/// device or the network), it logs that and exits with `code`, so a supervisor never has to kill it. The queue is
/// crash-safe, so exiting is never worse than the SIGKILL that would follow.
pub fn exit_after(deadline: Duration, code: i32) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let spawned = std::thread::Builder::new().name("stop-deadline".into()).spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            if d.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log::error!(
            "did not stop within {deadline:?}; exiting anyway (the queue recovers its leases at the next start)"
        );
        std::process::exit(code);
    });
    if let Err(e) = spawned {
        log::warn!("cannot start the stop deadline thread: {e}");
    }
    done
}

/// Installs the logger: to journald (priorities, the stable error codes as fields) when systemd connected our
/// stderr to the journal (`JOURNAL_STREAM`), else env_logger on the terminal as before. `spec` is an env_logger
/// filter (`info`, `info,ekyc_kiosk::api=debug`); `RUST_LOG` wins over it in both cases.
pub fn init_logger(spec: &str) {
    let spec = std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| spec.to_string());
    if systemd_journal_logger::connected_to_journal()
        && let Ok(journal) = systemd_journal_logger::JournalLog::new()
    {
        let filter = env_filter::Builder::new().parse(&spec).build();
        let max = filter.filter();
        let logger = JournalLogger { filter, journal: journal.with_syslog_identifier("ekyc-kiosk".into()) };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(max);
            return;
        }
    }
    let _ = env_logger::Builder::new().parse_filters(&spec).format_timestamp_millis().try_init();
}

/// journald, filtered like env_logger.
struct JournalLogger {
    filter: env_filter::Filter,
    journal: systemd_journal_logger::JournalLog,
}

impl log::Log for JournalLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.filter.matches(record) {
            log::Log::log(&self.journal, record);
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_and_follows_the_pid() {
        // SAFETY: this test is the only one in the crate touching these variables.
        unsafe {
            std::env::set_var("WATCHDOG_USEC", "4000000");
            std::env::remove_var("WATCHDOG_PID");
        }
        assert_eq!(watchdog_interval(), Some(Duration::from_secs(2)));
        let parent = unsafe { libc::getppid() };
        unsafe { std::env::set_var("WATCHDOG_PID", parent.to_string()) };
        assert_eq!(watchdog_interval(), Some(Duration::from_secs(2)), "cage (the parent) is the main pid");
        unsafe { std::env::set_var("WATCHDOG_PID", "999999999") };
        assert_eq!(watchdog_interval(), None, "pings for another process are not ours");
        unsafe {
            std::env::remove_var("WATCHDOG_USEC");
            std::env::remove_var("WATCHDOG_PID");
        }
        assert_eq!(watchdog_interval(), None);
    }
}
