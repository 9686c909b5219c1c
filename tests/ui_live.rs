//! The kiosk with the real camera worker (its bundled demo source) and the real checks behind it: the document
//! screen's preview fills with camera frames and the checks' hints reach the screen, through the same mailbox and
//! UI-thread conversion the kiosk uses. Headless; bounded by deadlines.

use ekyc_kiosk::camera::{CameraConfig, SourceSetting};
use ekyc_kiosk::capture::CaptureConfig;
use ekyc_kiosk::encode::EncodeConfig;
use ekyc_kiosk::flow::{Event, FlowConfig, Screen};
use ekyc_kiosk::queue::{QueueConfig, QueueHandle};
use ekyc_kiosk::view::ui::{AppWindow, Kiosk};
use ekyc_kiosk::view::{KioskView, LiveServices, Mailbox};
use slint::ComponentHandle;
use std::time::{Duration, Instant};

#[test]
fn preview_and_hints_come_from_the_camera_and_the_checks() {
    i_slint_backend_testing::init_no_event_loop();
    let app = AppWindow::new().unwrap();
    app.window().set_size(slint::PhysicalSize::new(800, 480));
    let mailbox = Mailbox::new(|| {});
    let camera = CameraConfig { source: SourceSetting::Demo, ..CameraConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), Duration::from_secs(60)).unwrap();
    let live = LiveServices::new(mailbox.clone(), camera, CaptureConfig::default(), EncodeConfig::default(), q.clone())
        .unwrap();
    let view = KioskView::new(app, FlowConfig::default(), Box::new(live), mailbox);
    view.handle(Event::Start);
    view.handle(Event::Accept);
    assert_eq!(view.state().screen, Screen::DocumentFront);
    let k = view.app().global::<Kiosk>();
    assert!(!k.get_preview_live(), "no frame yet");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && (!k.get_preview_live() || k.get_hint().is_empty()) {
        view.pump();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(k.get_preview_live(), "no camera frame reached the preview");
    let size = k.get_preview().size();
    assert!(size.width > 0 && size.width <= 640, "{size:?}");
    let hint = k.get_hint();
    assert!(
        hint == "looks_good" || hint == "hold_still" || ekyc_kiosk::capture::Hint::from_code(&hint).is_some(),
        "unknown hint {hint:?}"
    );
    // Leaving the capture screens stops the preview; nothing of the frames stays on screen.
    view.handle(Event::Finish);
    assert!(!k.get_preview_live());
    assert_eq!(k.get_preview().size().width, 0);
    drop(view);
    q.shutdown();
}
