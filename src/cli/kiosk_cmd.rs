//! The window commands: the customer kiosk (no subcommand), the operator console (`operator`) and the headless
//! gallery (`screenshot`). Runs on the main thread, which becomes Slint's UI thread.
//!
//! The kiosk runs the real camera and checks ([`LiveServices`]); the queue and the uploader are a DEMO stand-in
//! until they are wired in, and the status bar says so. The operator console shows the DEMO queue.

use super::{Exit, ScreenshotArgs};
use crate::config::Loaded;
use crate::view::demo::{DemoOutcome, DemoServices};
use crate::view::snapshot::{install_headless_platform, render_gallery, save_gallery};
use crate::view::ui::{AppWindow, Kiosk, OperatorWindow};
use crate::view::{KioskView, LiveServices, Mailbox, OperatorView, Services, event_loop_wake};
use slint::{ComponentHandle, PhysicalSize, TimerMode};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The flow's clock ticks this often (idle timer, countdowns, deadlines, and a mailbox drain as a backstop).
const TICK: Duration = Duration::from_millis(100);

const NO_DISPLAY: &str = "\
no display: the kiosk needs a Wayland compositor or an X server (neither WAYLAND_DISPLAY nor DISPLAY is set).
  - on a kiosk, run it under a Wayland kiosk compositor: `cage -- ekyc-kiosk`
  - on a machine without any display server, build with `--features kms` (DRM/KMS + libinput; needs
    libudev-dev libinput-dev libxkbcommon-dev to build) and run it on the console
  - to see the screens without a display: `ekyc-kiosk screenshot --out DIR`";

fn display_available() -> bool {
    cfg!(feature = "kms")
        || std::env::var_os("SLINT_BACKEND").is_some()
        || ["WAYLAND_DISPLAY", "WAYLAND_SOCKET", "DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// The customer kiosk: full screen (per `[kiosk]`), the flow, the DEMO services.
pub fn kiosk(loaded: &Loaded) -> Exit {
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
    let app = match AppWindow::new() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot open the kiosk window: {e}\n{NO_DISPLAY}");
            return Exit::Fatal;
        }
    };
    app.set_frameless(cfg.fullscreen);
    app.global::<Kiosk>().set_hide_cursor(cfg.hide_cursor);
    app.window().set_fullscreen(cfg.fullscreen);
    let mailbox = Mailbox::new(event_loop_wake());
    let c = &loaded.config;
    let services: Box<dyn Services> =
        match LiveServices::new(mailbox.clone(), c.camera.clone(), c.capture.clone(), c.encode.clone()) {
            Ok(live) => {
                log::warn!("DEMO queue: photos are checked and encoded, but applications are not saved or sent yet");
                Box::new(live)
            }
            Err(e) => {
                log::error!("{e}; running the DEMO camera and checks instead");
                Box::new(DemoServices::new(mailbox.clone(), DemoOutcome::Accept))
            }
        };
    let view = KioskView::new(app, flow, services, mailbox);
    view.make_active();
    let start = Instant::now();
    let timer = slint::Timer::default();
    let weak = Rc::downgrade(&view);
    timer.start(TimerMode::Repeated, TICK, move || {
        if let Some(v) = weak.upgrade() {
            v.tick(start.elapsed());
        }
    });
    match view.app().run() {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("error: the kiosk window failed: {e}");
            Exit::Fatal
        }
    }
}

/// The operator console, windowed.
pub fn operator(_loaded: &Loaded) -> Exit {
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
    log::warn!("DEMO: the operator console shows a simulated queue");
    let mailbox = Mailbox::new(|| {});
    let view = OperatorView::new(app, Box::new(DemoServices::new(mailbox, DemoOutcome::Accept)));
    match view.app().run() {
        Ok(()) => Exit::Done,
        Err(e) => {
            eprintln!("error: the operator window failed: {e}");
            Exit::Fatal
        }
    }
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
