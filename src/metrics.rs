//! Fleet metrics: a node_exporter textfile (`metrics.textfile`, a `.prom` file in node_exporter's textfile
//! directory) in the Prometheus text format, replaced atomically (`durable::replace_file`), so a fleet's Prometheus
//! sees which kiosks have applications waiting, a rejected key, a locked queue or an unplugged camera.
//!
//! The kiosk and `queue drain` each run a [`Monitor`] thread: it reads the queue's status (durable counters included,
//! so `sent` and the failures survive restarts) and the camera's state ([`set_camera`], set by the capture thread),
//! and rewrites the file every `metrics.interval` and within a second of a change. It also sets the service status
//! line systemd shows (`STATUS=`, the applications waiting). Nothing in the file identifies an applicant.

use crate::queue::{QueueHandle, QueueStatus};
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The node_exporter textfile to write (a `.prom` file in the directory node_exporter's textfile collector
    /// reads). Unset: no file (the default, except in the Debian package's configuration).
    pub textfile: Option<PathBuf>,
    /// How often the file is rewritten when nothing changes (a change rewrites it within a second).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { textfile: None, interval: Duration::from_secs(30) }
    }
}

impl MetricsConfig {
    /// Checks the values (the message starts with the key).
    pub fn validate(&self) -> Result<(), String> {
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.interval) {
            return Err("metrics.interval: must be from 1s to 1h".into());
        }
        if let Some(p) = &self.textfile
            && p.extension().and_then(|e| e.to_str()) != Some("prom")
        {
            return Err("metrics.textfile: must end in .prom (node_exporter reads only those)".into());
        }
        Ok(())
    }
}

/// Why the metrics could not be rendered or written.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// The Prometheus registry refused a metric or the encoder failed (a bug: names are fixed).
    #[error("cannot render the metrics: {0}")]
    Render(#[from] prometheus::Error),
    /// The textfile could not be replaced (its directory missing or not writable).
    #[error("cannot write the metrics file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The monitor thread could not be started.
    #[error("cannot start the metrics thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The customer camera's state, as the capture thread last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraState {
    /// Not looked for yet (or this process has no camera: `queue drain`).
    Unknown = 0,
    /// A camera (or the configured replay frames) delivers.
    Connected = 1,
    /// None found, or it does not open: the kiosk is out of service.
    Unavailable = 2,
    /// The bundled demo pictures (demo mode only).
    Demo = 3,
}

impl CameraState {
    const ALL: [CameraState; 4] =
        [CameraState::Unknown, CameraState::Connected, CameraState::Unavailable, CameraState::Demo];

    fn label(self) -> &'static str {
        match self {
            CameraState::Unknown => "unknown",
            CameraState::Connected => "connected",
            CameraState::Unavailable => "unavailable",
            CameraState::Demo => "demo",
        }
    }

    fn from_u8(v: u8) -> CameraState {
        CameraState::ALL.get(v as usize).copied().unwrap_or(CameraState::Unknown)
    }
}

/// The process's one camera state (the metrics registry of a process is global by nature; this is its only input
/// that does not come from the queue).
static CAMERA: AtomicU8 = AtomicU8::new(CameraState::Unknown as u8);

/// Records the camera's state (called by the capture thread when it changes).
pub fn set_camera(state: CameraState) {
    CAMERA.store(state as u8, Ordering::SeqCst);
}

/// The camera's state last recorded.
pub fn camera() -> CameraState {
    CameraState::from_u8(CAMERA.load(Ordering::SeqCst))
}

/// Everything one textfile says.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The queue's status, or `None` when it does not answer.
    pub queue: Option<QueueStatus>,
    /// The camera.
    pub camera: CameraState,
    /// Free bytes on the data directory's file system.
    pub disk_free_bytes: Option<u64>,
    /// Which process wrote it: `kiosk` or `drain`.
    pub writer: &'static str,
    /// When, seconds since the Unix epoch.
    pub now_s: f64,
}

impl Sample {
    /// Reads the queue, the camera and the disk now.
    pub fn collect(queue: &QueueHandle, data_dir: &Path, writer: &'static str) -> Sample {
        let status = match queue.status() {
            Ok(s) => Some(s),
            Err(e) => {
                log::debug!("metrics: the queue does not answer: {e}");
                None
            }
        };
        Sample {
            queue: status,
            camera: camera(),
            disk_free_bytes: crate::queue::free_bytes(data_dir).ok(),
            writer,
            now_s: crate::queue::now_ms() as f64 / 1000.0,
        }
    }

    /// The Prometheus text exposition of this sample.
    pub fn render(&self) -> Result<String, MetricsError> {
        let r = Registry::new();
        let gauge = |name: &str, help: &str, v: i64| -> Result<(), MetricsError> {
            let g = IntGauge::with_opts(Opts::new(name, help))?;
            g.set(v);
            r.register(Box::new(g))?;
            Ok(())
        };
        let info = IntGaugeVec::new(
            Opts::new("ekyc_build_info", "The product's version and which process wrote this file (always 1)."),
            &["version", "writer"],
        )?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), self.writer]).set(1);
        r.register(Box::new(info))?;
        let written = Gauge::with_opts(Opts::new(
            "ekyc_metrics_written_timestamp_seconds",
            "When this file was written (the alert on a stale file compares it to time()).",
        ))?;
        written.set(self.now_s);
        r.register(Box::new(written))?;
        gauge(
            "ekyc_queue_up",
            "1 when the queue answered for this file, 0 when it did not.",
            i64::from(self.queue.is_some()),
        )?;

        let cam = IntGaugeVec::new(
            Opts::new("ekyc_camera_state", "The customer camera: 1 for the current state, 0 for the others."),
            &["state"],
        )?;
        for s in CameraState::ALL {
            cam.with_label_values(&[s.label()]).set(i64::from(s == self.camera));
        }
        r.register(Box::new(cam))?;
        if let Some(free) = self.disk_free_bytes {
            gauge(
                "ekyc_disk_free_bytes",
                "Free bytes (for an unprivileged user) on the data directory's file system.",
                free as i64,
            )?;
        }

        if let Some(q) = &self.queue {
            gauge(
                "ekyc_applications_waiting",
                "Applications saved on this device and not yet accepted by the API (any state but done).",
                q.waiting as i64,
            )?;
            let by_state = IntGaugeVec::new(
                Opts::new("ekyc_applications", "Applications on this device by state (done ones until they expire)."),
                &["state"],
            )?;
            let mut states: Vec<(&&str, &u64)> = q.counts.iter().collect();
            states.sort();
            for (state, n) in states {
                by_state.with_label_values(&[state]).set(*n as i64);
            }
            r.register(Box::new(by_state))?;
            gauge(
                "ekyc_applications_waiting_for_customer",
                "Applications the API refused for a reason the customer or staff must fix (needs_user).",
                q.counts.get("needs_user").copied().unwrap_or(0) as i64,
            )?;
            gauge(
                "ekyc_oldest_waiting_seconds",
                "Age of the oldest waiting application (0 when none waits), counted while the product ran.",
                q.oldest_waiting_s.unwrap_or(0) as i64,
            )?;
            let sent =
                IntCounter::with_opts(Opts::new("ekyc_sent_total", "Applications the API accepted (all steps done)."))?;
            sent.inc_by(q.sent_total);
            r.register(Box::new(sent))?;
            let failures = IntCounterVec::new(
                Opts::new("ekyc_send_failures_total", "Failed send attempts by the API error's stable code."),
                &["code"],
            )?;
            for (code, n) in &q.failures {
                failures.with_label_values(&[code.as_str()]).inc_by(*n);
            }
            r.register(Box::new(failures))?;
            if let Some(ms) = q.last_sent_ms {
                let g = Gauge::with_opts(Opts::new(
                    "ekyc_last_sent_timestamp_seconds",
                    "When the API last accepted an application, seconds since the Unix epoch.",
                ))?;
                g.set(ms as f64 / 1000.0);
                r.register(Box::new(g))?;
            }
            gauge(
                "ekyc_api_key_rejected",
                "1 while the API rejects this kiosk's key (sending is paused).",
                i64::from(q.api_key_rejected),
            )?;
            gauge(
                "ekyc_queue_locked",
                "1 while the queue is locked (its key missing or wrong).",
                i64::from(q.locked.is_some()),
            )?;
            gauge(
                "ekyc_queue_quarantined",
                "1 while a corrupt database moved to quarantine is not acknowledged (`queue acknowledge`).",
                i64::from(q.quarantine.is_some()),
            )?;
            gauge("ekyc_queue_stored_bytes", "Image bytes stored in the queue.", q.stored_bytes as i64)?;
        }
        Ok(prometheus::TextEncoder::new().encode_to_string(&r.gather())?)
    }
}

/// Renders `sample` and replaces `path` with it (0644: node_exporter runs as another user).
pub fn write_textfile(path: &Path, sample: &Sample) -> Result<(), MetricsError> {
    let text = sample.render()?;
    crate::durable::replace_file(path, text.as_bytes(), 0o644)
        .map_err(|source| MetricsError::Write { path: path.to_owned(), source })
}

/// The line `systemctl status` shows.
pub fn status_line(q: &QueueStatus) -> String {
    let mut s = match q.waiting {
        0 => "no application waiting".to_string(),
        1 => "1 application waiting".to_string(),
        n => format!("{n} applications waiting"),
    };
    if let Some(o) = q.oldest_waiting_s.filter(|_| q.waiting > 0) {
        s.push_str(&format!(", oldest {}", humantime::format_duration(Duration::from_secs(o))));
    }
    if q.locked.is_some() {
        s.push_str("; QUEUE LOCKED");
    }
    if q.api_key_rejected {
        s.push_str("; API KEY REJECTED");
    }
    s
}

/// How often the monitor looks for a change.
const POLL: Duration = Duration::from_secs(1);

/// The thread that keeps the textfile and the service status current. Stop it with [`Monitor::shutdown`] (within
/// about a second; the last file is written on the way out).
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Starts the monitor over `queue` for the process `writer` (`kiosk`, `drain`).
    pub fn start(
        cfg: &MetricsConfig,
        queue: QueueHandle,
        data_dir: PathBuf,
        writer: &'static str,
    ) -> Result<Monitor, MetricsError> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let cfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || run(&cfg, &queue, &data_dir, writer, &s))
            .map_err(MetricsError::Thread)?;
        Ok(Monitor { stop, thread: Some(thread) })
    }

    /// Stops the thread after one last write.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn run(cfg: &MetricsConfig, queue: &QueueHandle, data_dir: &Path, writer: &'static str, stop: &AtomicBool) {
    let events = queue.subscribe().ok();
    let mut last_write: Option<Instant> = None;
    let mut last_camera = camera();
    let mut last_status = String::new();
    let mut write_failed = false;
    let mut changed = true;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let cam = camera();
        if cam != last_camera {
            last_camera = cam;
            changed = true;
        }
        let due = last_write.is_none_or(|t| t.elapsed() >= cfg.interval);
        if changed || due || stopping {
            let sample = Sample::collect(queue, data_dir, writer);
            if let Some(q) = &sample.queue {
                let line = status_line(q);
                if line != last_status {
                    crate::service::notify_status(&line);
                    last_status = line;
                }
            }
            if let Some(path) = &cfg.textfile {
                match write_textfile(path, &sample) {
                    Ok(()) => {
                        if write_failed {
                            log::info!("metrics: {} written again", path.display());
                        }
                        write_failed = false;
                    }
                    // Once per failure streak, not every interval.
                    Err(e) if !write_failed => {
                        log::warn!(error_code = "metrics_write_failed"; "{e}");
                        write_failed = true;
                    }
                    Err(_) => {}
                }
            }
            last_write = Some(Instant::now());
            changed = false;
        }
        if stopping {
            return;
        }
        match &events {
            Some(rx) => match rx.recv_timeout(POLL) {
                Ok(_) => {
                    changed = true;
                    // Take the burst that came with it (a step's several events) before writing once.
                    while rx.try_recv().is_ok() {}
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
            },
            None => std::thread::sleep(POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn status() -> QueueStatus {
        let mut counts = HashMap::new();
        for (s, n) in [("pending", 2), ("in_flight", 1), ("done", 7), ("needs_user", 1), ("failed", 0)] {
            counts.insert(s, n);
        }
        let mut failures = BTreeMap::new();
        failures.insert("network_unreachable".to_string(), 3);
        failures.insert("api_key_rejected".to_string(), 1);
        QueueStatus {
            locked: None,
            counts,
            waiting: 4,
            oldest_waiting_s: Some(7200),
            stored_bytes: 123,
            expired_purged: 0,
            ambiguous_sends: 0,
            alerts: Vec::new(),
            recent_events: Vec::new(),
            sent_total: 7,
            last_sent_ms: Some(1_700_000_000_000),
            failures,
            api_key_rejected: true,
            tls_failed: false,
            certificate_refused: false,
            quarantine: None,
            expired_unacknowledged: 0,
        }
    }

    #[test]
    fn the_textfile_says_what_the_fleet_needs_in_the_text_format() {
        let s = Sample {
            queue: Some(status()),
            camera: CameraState::Unavailable,
            disk_free_bytes: Some(5_000_000),
            writer: "kiosk",
            now_s: 1_700_000_100.5,
        };
        let text = s.render().unwrap();
        for line in [
            "ekyc_applications_waiting 4",
            "ekyc_applications_waiting_for_customer 1",
            "ekyc_applications{state=\"pending\"} 2",
            "ekyc_oldest_waiting_seconds 7200",
            "# TYPE ekyc_sent_total counter",
            "ekyc_sent_total 7",
            "ekyc_send_failures_total{code=\"network_unreachable\"} 3",
            "ekyc_last_sent_timestamp_seconds 1700000000",
            "ekyc_api_key_rejected 1",
            "ekyc_queue_locked 0",
            "ekyc_queue_quarantined 0",
            "ekyc_camera_state{state=\"unavailable\"} 1",
            "ekyc_camera_state{state=\"connected\"} 0",
            "ekyc_disk_free_bytes 5000000",
            "ekyc_metrics_written_timestamp_seconds 1700000100.5",
            "ekyc_queue_up 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(
            text.contains(&format!("ekyc_build_info{{version=\"{}\",writer=\"kiosk\"}} 1", env!("CARGO_PKG_VERSION")))
        );
        // A queue that does not answer: no queue figures, and it says so.
        let t = Sample { queue: None, ..s }.render().unwrap();
        assert!(t.contains("ekyc_queue_up 0") && !t.contains("ekyc_applications_waiting"), "{t}");
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ekyc.prom");
        let s = Sample {
            queue: Some(status()),
            camera: CameraState::Demo,
            disk_free_bytes: None,
            writer: "drain",
            now_s: 1.0,
        };
        write_textfile(&path, &s).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ekyc_camera_state{state=\"demo\"} 1"), "{text}");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        let e = write_textfile(&dir.path().join("missing/ekyc.prom"), &s).unwrap_err();
        assert!(matches!(e, MetricsError::Write { .. }), "{e}");
    }

    #[test]
    fn status_line_and_config_checks() {
        assert_eq!(status_line(&status()), "4 applications waiting, oldest 2h; API KEY REJECTED");
        let mut c = MetricsConfig::default();
        assert!(c.validate().is_ok());
        c.textfile = Some("/tmp/x.txt".into());
        assert!(c.validate().unwrap_err().starts_with("metrics.textfile"));
        c.textfile = Some("/tmp/x.prom".into());
        c.interval = Duration::ZERO;
        assert!(c.validate().unwrap_err().starts_with("metrics.interval"));
    }
}
