//! The window commands: the customer kiosk (no subcommand), the operator console (`operator`) and the headless
//! gallery (`screenshot`). Runs on the main thread, which becomes Slint's UI thread.
//!
//! Both windows run [`LiveServices`]: the real camera and checks (the camera opens only on a capture screen, so the
//! operator console never opens it) and the real durable queue, with the uploader sending to the configured API or
//! the embedded sandbox. The queue and the uploader start before the window opens and stop after it closes; if the
//! queue cannot open (another process holds it, a broken key file) the command stops with that error instead of
//! running without a queue. A queue that opens locked (its key missing or wrong) still opens the window: the
//! customer screen says the kiosk is out of service and the console shows why and what to do; nothing is lost.

use super::enroll::{Sender, start_sender};
use super::queue_cmd::open_queue;
use super::{Exit, ScreenshotArgs};
use crate::config::Loaded;
use crate::flow::staff::StaffConfig;
use crate::queue::QueueHandle;
use crate::view::snapshot::{install_headless_platform, render_gallery, save_gallery};
use crate::view::ui::{AppWindow, Kiosk, OperatorWindow};
use crate::view::{
    CameraChoice, KioskView, LiveOperatorApi, LiveServices, Mailbox, OperatorView, StaffLockFile, event_loop_wake,
};
use slint::{ComponentHandle, PhysicalSize, TimerMode};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The flow's clock ticks this often (idle timer, countdowns, deadlines, and a mailbox drain as a backstop).
const TICK: Duration = Duration::from_millis(100);

const NO_DISPLAY: &str = "\
no display: the kiosk needs a Wayland compositor or an X server (neither WAYLAND_DISPLAY nor DISPLAY is set).
  - on a desktop, start it from the graphical session (a terminal in it sets DISPLAY or WAYLAND_DISPLAY)
  - on a kiosk, run it under a Wayland kiosk compositor: `cage -- ekyc-kiosk`
  - on a machine without any display server, build with `--features kms` (DRM/KMS + libinput; needs
    libudev-dev libinput-dev libxkbcommon-dev to build) and run it on the console
  - to see the screens without a display: `ekyc-kiosk screenshot --out DIR`
  - to send a whole application without a display: `ekyc-kiosk enroll --front F --face F --email E --phone P`
    (from a clone: `.ci/demo enroll-demo` does it with the bundled demo images)";

fn display_available() -> bool {
    cfg!(feature = "kms")
        || std::env::var_os("SLINT_BACKEND").is_some()
        || ["WAYLAND_DISPLAY", "WAYLAND_SOCKET", "DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// Longest a stop asked for by SIGTERM or SIGINT may take (the uploader's grace, the camera, the queue's last
/// commit); past it the process logs and exits anyway, before systemd's `TimeoutStopSec` would kill it.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A window run as a supervised service: SIGTERM and SIGINT quit the event loop (the caller then stops the services
/// as on a close), `READY=1` once the window is shown, and `WATCHDOG=1` from a timer on the UI thread, so a hung UI
/// stops the pings and systemd restarts it. Outside systemd only the signal handling does anything.
struct Supervision {
    signals: Option<crate::service::ShutdownSignals>,
    _watchdog: Option<slint::Timer>,
}

impl Supervision {
    /// Call before the event loop runs; `what` names the window in the log (`kiosk`, `operator console`).
    fn start(what: &'static str, started: Instant, ready_status: String) -> Supervision {
        let signals = match crate::service::ShutdownSignals::install(move |name| {
            log::info!("{what}: {name}: closing the window, then the camera, the uploader and the queue");
            // A thread blocked in a device or the network must not keep the process past the deadline.
            crate::service::exit_after(STOP_DEADLINE, i32::from(Exit::Fatal.code()));
            if let Err(e) = slint::invoke_from_event_loop(|| {
                let _ = slint::quit_event_loop();
            }) {
                log::error!("cannot reach the event loop to stop it: {e}");
            }
        }) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("{e}");
                None
            }
        };
        // Runs in the event loop's first pass, once the window exists (under X11, winit has drawn its first frame
        // and mapped it by then). Benchmarks and the service tests read this line.
        if let Err(e) = slint::invoke_from_event_loop(move || {
            log::info!("{what}: window shown {} ms after start", started.elapsed().as_millis());
            crate::service::notify_ready(&ready_status);
        }) {
            log::debug!("cannot schedule the window-shown log line: {e}");
        }
        let watchdog = crate::service::watchdog_interval().map(|every| {
            log::info!("{what}: watchdog pings every {} ms", every.as_millis());
            let t = slint::Timer::default();
            t.start(TimerMode::Repeated, every, crate::service::notify_watchdog);
            t
        });
        Supervision { signals, _watchdog: watchdog }
    }

    /// The signal that stopped the window, if one did.
    fn stopped_by(&self) -> Option<&'static str> {
        self.signals.as_ref().and_then(|s| s.received())
    }
}

/// The queue, the uploader and the services over them, for one window.
struct Backend {
    queue: QueueHandle,
    sender: Sender,
}

/// The operator console's API calls, to the API the uploader sends to.
fn operator_api(loaded: &Loaded, backend: &Backend, mailbox: Arc<Mailbox>) -> Result<LiveOperatorApi, String> {
    let (client, sandbox) = backend.sender.api_client(loaded)?;
    LiveOperatorApi::spawn(client, sandbox, mailbox).map_err(|e| format!("cannot start the operator-api thread: {e}"))
}

impl Backend {
    /// Opens the queue, starts the uploader and builds the services posting to `mailbox`. A locked queue is logged
    /// and kept: the services report it to the window (out of service, the console's alert).
    fn start(loaded: &Loaded, mailbox: Arc<Mailbox>) -> Result<(Backend, LiveServices), String> {
        let queue = open_queue(loaded).map_err(|e| format!("cannot open the queue: {e}"))?;
        let fail = |q: &QueueHandle, msg: String| {
            q.shutdown();
            Err(msg)
        };
        match queue.status() {
            Ok(s) => {
                if let Some(reason) = s.locked {
                    log::error!(error_code = "queue_locked";
                        "the queue is locked, nothing can be saved or sent until it is fixed: {reason}");
                    eprintln!("warning: the queue is locked: {reason}");
                }
            }
            Err(e) => return fail(&queue, format!("the queue does not answer: {e}")),
        }
        let sender = match start_sender(loaded, &queue) {
            Ok(s) => s,
            Err(e) => return fail(&queue, format!("cannot start the uploader: {e}")),
        };
        let c = &loaded.config;
        match LiveServices::new(mailbox, c.camera.clone(), c.capture.clone(), c.encode.clone(), queue.clone()) {
            Ok(mut live) => {
                // The operator's "Use this camera" lasts across restarts, until the configuration names another.
                live.remember_camera(CameraChoice::new(&c.storage.data_dir));
                Ok((Backend { queue, sender }, live))
            }
            Err(e) => {
                sender.shutdown();
                fail(&queue, e)
            }
        }
    }

    /// Stops the uploader, then the queue (call after the services are dropped).
    fn shutdown(self) {
        self.sender.shutdown();
        self.queue.shutdown();
    }
}

/// The customer kiosk: full screen (per `[kiosk]`), the flow, the live services.
pub fn kiosk(loaded: &Loaded) -> Exit {
    let started = Instant::now();
    let cfg = &loaded.config.kiosk;
    let flow = match cfg.flow() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Fatal;
        }
    };
    if !display_available() {
        eprintln!("error: {NO_DISPLAY}");
        return Exit::Fatal;
    }
    let app = match kiosk_window(cfg) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    let mailbox = Mailbox::new(event_loop_wake());
    log::info!("kiosk: run mode {}", loaded.mode.describe());
    let (backend, live) = match Backend::start(loaded, mailbox.clone()) {
        Ok(b) => b,
        // No customer is taken, but the screen says so (under a kiosk compositor an exit is a black screen or a
        // restart loop) and staff read why.
        Err(e) => return show_out_of_service(app, &e, started),
    };
    // The kiosk takes no customer without a working camera, and notices when one comes back.
    live.watch_camera();
    let view = KioskView::new(app, flow, Box::new(live), mailbox.clone());
    match operator_api(loaded, &backend, mailbox) {
        Ok(api) => {
            if loaded.staff_pin.is_none() {
                log::info!("no staff pin is configured (kiosk.staff_pin_file or EKYC_STAFF_PIN): no operator screen");
            }
            // The console also sets the status bar's sandbox badge.
            let policy = StaffConfig::new(loaded.staff_pin.clone(), flow.idle_timeout + flow.idle_countdown);
            let lock = StaffLockFile::new(&loaded.config.storage.data_dir);
            view.enable_staff(policy, Box::new(api), Some(lock));
        }
        Err(e) => log::error!("the operator screen is unavailable: {e}"),
    }
    view.make_active();
    let start = Instant::now();
    let timer = slint::Timer::default();
    let weak = Rc::downgrade(&view);
    timer.start(TimerMode::Repeated, TICK, move || {
        if let Some(v) = weak.upgrade() {
            v.tick(start.elapsed());
        }
    });
    // The fleet metrics textfile and the service's status line, from the queue and the camera.
    let monitor = match crate::metrics::Monitor::start(
        &loaded.config.metrics,
        backend.queue.clone(),
        loaded.config.storage.data_dir.clone(),
        "kiosk",
    ) {
        Ok(m) => Some(m),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    };
    // `benches/kiosk_startup.sh` reads the "window shown" line.
    let supervision = Supervision::start("kiosk", started, "kiosk ready".into());
    let exit = match view.app().run() {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("error: the kiosk window failed: {e}");
            Exit::Fatal
        }
    };
    let stopping = Instant::now();
    // The services (capture thread, queue events) stop first, then the metrics (one last file), the uploader and
    // the queue.
    drop(timer);
    drop(view);
    if let Some(m) = monitor {
        m.shutdown();
    }
    backend.shutdown();
    if let Some(name) = supervision.stopped_by() {
        log::info!(
            "kiosk: stopped cleanly on {name} in {} ms: the uploader gave its step back, the camera and the queue \
             are closed",
            stopping.elapsed().as_millis()
        );
    }
    exit
}

/// The kiosk whose configuration cannot run (it does not load, or it names no API outside demo mode): the window
/// opens on the out-of-service notice with the reason for staff, takes no customer, starts nothing (no queue, no
/// camera, no sandbox), and the process exits 4 when the window is closed. Without a display: the error and exit 4.
pub fn misconfigured(reason: &str) -> Exit {
    if !display_available() {
        log::error!("the kiosk is out of service: {reason}");
        eprintln!("error: {reason}");
        return Exit::Fatal;
    }
    // The configuration did not load: the built-in kiosk defaults (full screen, no pointer) apply.
    let app = match kiosk_window(&crate::view::KioskConfig::default()) {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    show_out_of_service(app, reason, Instant::now())
}

/// The customer window as `[kiosk]` asks (full screen and frameless, the pointer hidden), or the error printed.
fn kiosk_window(cfg: &crate::view::KioskConfig) -> Result<AppWindow, Exit> {
    let app = AppWindow::new().map_err(|e| {
        eprintln!("error: cannot open the kiosk window: {e}\n{NO_DISPLAY}");
        Exit::Fatal
    })?;
    app.set_frameless(cfg.fullscreen);
    app.global::<Kiosk>().set_hide_cursor(cfg.hide_cursor);
    app.window().set_fullscreen(cfg.fullscreen);
    Ok(app)
}

/// Runs `app` on the out-of-service notice with `reason` for staff until it is closed; exits 4.
fn show_out_of_service(app: AppWindow, reason: &str, started: Instant) -> Exit {
    log::error!(error_code = "out_of_service"; "kiosk out of service: {reason}");
    eprintln!("error: the kiosk is out of service: {reason}");
    let k = app.global::<Kiosk>();
    k.set_config_error(reason.into());
    k.set_staff_available(false);
    // Nothing runs that could reach an API: the status bar says offline rather than "checking".
    k.set_connection_known(true);
    k.set_online(false);
    // Ready as a service: the window is up and says why no customer is taken (a restart would not fix it).
    let supervision = Supervision::start("kiosk: out-of-service", started, "out of service (see the log)".into());
    if let Err(e) = app.run() {
        eprintln!("error: the kiosk window failed: {e}");
    }
    match supervision.stopped_by() {
        Some(name) => {
            log::info!("kiosk: out-of-service window stopped cleanly on {name}");
            Exit::Done
        }
        None => Exit::Fatal,
    }
}

/// The operator console, windowed, over the real queue (the uploader runs while it is open, so a retry is sent).
pub fn operator(loaded: &Loaded) -> Exit {
    if !display_available() {
        eprintln!("error: {NO_DISPLAY}");
        return Exit::Fatal;
    }
    let app = match OperatorWindow::new() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot open the operator window: {e}");
            return Exit::Fatal;
        }
    };
    // The console reads the queue when asked; it takes its own answers from the mailbox on every tick (the status
    // reports meant for the kiosk's status bar are dropped).
    let mailbox = Mailbox::new(|| {});
    let (backend, live) = match Backend::start(loaded, mailbox.clone()) {
        Ok(b) => b,
        Err(e) => {
            log::error!("{e}");
            eprintln!("error: {e}");
            return Exit::Fatal;
        }
    };
    let api = match operator_api(loaded, &backend, mailbox.clone()) {
        Ok(a) => a,
        Err(e) => {
            drop(live);
            backend.shutdown();
            eprintln!("error: {e}");
            return Exit::Fatal;
        }
    };
    let services: Box<dyn crate::view::Services> = Box::new(live);
    let view = OperatorView::new(app, Rc::new(RefCell::new(services)), Box::new(api));
    view.open();
    // The status bar's connection state comes from this check (the desktop window has no flow to report it).
    view.probe_connection();
    let drain = slint::Timer::default();
    let weak = Rc::downgrade(&view);
    drain.start(TimerMode::Repeated, TICK, move || {
        if let Some(v) = weak.upgrade() {
            v.drain(&mailbox);
        }
    });
    let supervision = Supervision::start("operator console", Instant::now(), "operator console ready".into());
    let exit = match view.host().run() {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("error: the operator window failed: {e}");
            Exit::Fatal
        }
    };
    drop(drain);
    drop(view);
    backend.shutdown();
    if let Some(name) = supervision.stopped_by() {
        log::info!("operator console: stopped cleanly on {name}: the uploader gave its step back, the queue is closed");
    }
    exit
}

/// Renders every main screen to `DIR/*.png` without a display.
pub fn screenshot(args: ScreenshotArgs) -> Exit {
    let run = || -> Result<Vec<std::path::PathBuf>, crate::view::snapshot::SnapshotError> {
        install_headless_platform()?;
        let shots = render_gallery(PhysicalSize::new(args.size.0, args.size.1))?;
        save_gallery(&shots, &args.out)
    };
    match run() {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            Exit::Done
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Fatal
        }
    }
}
