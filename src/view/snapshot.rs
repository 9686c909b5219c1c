//! Headless rendering: a Slint platform with no display ([`install_headless_platform`]) and the gallery of every
//! main screen rendered to PNG from demo data ([`render_gallery`], used by `ekyc-kiosk screenshot` and the UI
//! tests). Runs on the calling thread, which becomes the UI thread.

use super::demo::StillServices;
use super::services::{Mailbox, Services};
use super::ui::{AppWindow, ConsolePage, Kiosk, Operator, OperatorWindow};
use super::{DemoOperatorApi, KioskView, OperatorView};
use crate::api::ErrorCode;
use crate::flow::staff::StaffConfig;
use crate::flow::{Event, Field, FlowConfig, Key, KioskStatus, Language, Screen};
use crate::secret::StaffPin;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use slint::{ComponentHandle, PhysicalSize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a screen could not be rendered or saved.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// A Slint platform is already installed in this process (or installing failed).
    #[error("cannot install the headless platform: {0}")]
    Platform(String),
    /// Slint could not create or render a window.
    #[error("cannot render the {screen} screen: {message}")]
    Render {
        /// The screen's name.
        screen: String,
        /// Slint's message.
        message: String,
    },
    /// The PNG could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
    /// The output directory could not be created.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The flow did not reach the screen the gallery expected (a defect in the gallery script).
    #[error("the gallery expected the {expected} screen but the flow is on {actual}")]
    Flow {
        /// The screen expected.
        expected: String,
        /// The screen reached.
        actual: String,
    },
}

/// A platform with no display: every window renders into memory with the software renderer.
struct HeadlessPlatform {
    start: Instant,
}

impl Platform for HeadlessPlatform {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer))
    }

    fn duration_since_start(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Installs the headless platform for this process (once; before any window is created).
pub fn install_headless_platform() -> Result<(), SnapshotError> {
    slint::platform::set_platform(Box::new(HeadlessPlatform { start: Instant::now() }))
        .map_err(|e| SnapshotError::Platform(e.to_string()))
}

/// Renders a window as it is now.
pub fn render(window: &slint::Window, name: &str) -> Result<image::RgbaImage, SnapshotError> {
    slint::platform::update_timers_and_animations();
    let err = |message: String| SnapshotError::Render { screen: name.into(), message };
    let shot = window.take_snapshot().map_err(|e| err(e.to_string()))?;
    image::RgbaImage::from_raw(shot.width(), shot.height(), shot.as_bytes().to_vec())
        .ok_or_else(|| err("the snapshot's size does not match its pixels".into()))
}

/// One rendered screen of the gallery.
#[derive(Debug)]
pub struct Shot {
    /// File stem, e.g. `04-face`.
    pub name: &'static str,
    /// The screen the flow was on.
    pub screen: Screen,
    /// The picture.
    pub image: image::RgbaImage,
}

/// Drives the customer flow (with [`StillServices`], i.e. DEMO frames) and the operator console through every main
/// screen at `size`, and returns one picture per screen. Needs a Slint platform (the headless one, or the testing
/// backend in tests).
pub fn render_gallery(size: PhysicalSize) -> Result<Vec<Shot>, SnapshotError> {
    let mut shots = Vec::new();
    let app = AppWindow::new().map_err(|e| SnapshotError::Render { screen: "kiosk".into(), message: e.to_string() })?;
    app.window().set_size(size);
    let mailbox = Mailbox::new(|| {});
    let services = StillServices::new(mailbox.clone());
    let config = FlowConfig::default();
    let view = KioskView::new(app, config, Box::new(services), mailbox);
    let mut shoot = |name: &'static str, expected: Screen, view: &KioskView| -> Result<(), SnapshotError> {
        view.pump();
        let s = view.state();
        if s.screen != expected {
            return Err(SnapshotError::Flow { expected: format!("{expected:?}"), actual: format!("{:?}", s.screen) });
        }
        let image = render(view.app().window(), name)?;
        shots.push(Shot { name, screen: expected, image });
        Ok(())
    };
    let act = |view: &KioskView, events: Vec<Event>| {
        for e in events {
            view.handle(e);
            view.pump();
        }
    };

    act(&view, vec![Event::Status(KioskStatus { online: Some(true), pending: 1 })]);
    shoot("01-welcome", Screen::Welcome, &view)?;
    act(&view, vec![Event::SelectLanguage(Language::French)]);
    shoot("02-welcome-fr", Screen::Welcome, &view)?;
    act(&view, vec![Event::SelectLanguage(Language::English), Event::Start]);
    shoot("03-consent", Screen::Consent, &view)?;
    act(&view, vec![Event::Accept]);
    shoot("04-document", Screen::DocumentFront, &view)?;
    act(&view, vec![Event::ManualCapture, Event::ManualCapture]);
    shoot("05-face", Screen::Face, &view)?;
    act(&view, vec![Event::ManualCapture]);
    shoot("06-review", Screen::Review, &view)?;
    let text = |t: &str| Event::Key(Key::Text(t.into()));
    act(&view, vec![Event::ConfirmPhotos, text("ada@example"), Event::Focus(Field::Phone), text("+44 20 7946")]);
    shoot("07-contact", Screen::Contact, &view)?;
    act(&view, vec![text(" 0958"), Event::Focus(Field::Email), text(".org"), Event::Submit]);
    let reference = view.state().reference().unwrap_or_default().to_string();
    act(&view, vec![Event::Progress { reference: reference.clone(), done: 1, total: 3 }]);
    shoot("08-submitting", Screen::Submitting, &view)?;
    act(&view, vec![Event::Accepted { reference }]);
    shoot("09-result", Screen::Result, &view)?;

    // A second customer: the face does not match, the retry prompt offers a new photo.
    act(&view, vec![Event::Finish]);
    submit_quickly(&view);
    let reference = view.state().reference().unwrap_or_default().to_string();
    act(&view, vec![Event::Rejected { reference, code: ErrorCode::FaceMismatch }]);
    shoot("10-retry", Screen::Retry, &view)?;

    // A third customer while the network is down: saved, will be sent.
    act(&view, vec![Event::Finish]);
    submit_quickly(&view);
    act(&view, vec![Event::Status(KioskStatus { online: Some(false), pending: 3 })]);
    shoot("11-offline", Screen::Saved, &view)?;

    // They walk away: "Are you still there?".
    view.tick(view.state().now + config.idle_timeout + Duration::from_secs(3));
    shoot("12-idle", Screen::Saved, &view)?;
    act(&view, vec![Event::Finish]);

    // Staff: the PIN pad over the welcome screen (two digits typed).
    let pin = StaffPin::parse("246813").map_err(|message| SnapshotError::Render { screen: "pin".into(), message })?;
    let staff_api = DemoOperatorApi::new(view.mailbox());
    view.enable_staff(StaffConfig::new(Some(pin), config.idle_timeout), Box::new(staff_api), None);
    let k = view.app().global::<Kiosk>();
    k.invoke_open_staff();
    k.invoke_pin_digit(2);
    k.invoke_pin_digit(4);
    shoot("13-staff-pin", Screen::Welcome, &view)?;
    k.invoke_pin_cancel();

    // The operator console, as `ekyc-kiosk operator` shows it: each page.
    let op = OperatorWindow::new()
        .map_err(|e| SnapshotError::Render { screen: "operator".into(), message: e.to_string() })?;
    op.window().set_size(size);
    let op_mailbox = Mailbox::new(|| {});
    let services: Box<dyn Services> = Box::new(StillServices::new(op_mailbox.clone()));
    let op_view =
        OperatorView::new(op, Rc::new(RefCell::new(services)), Box::new(DemoOperatorApi::new(op_mailbox.clone())));
    op_view.open();
    let mut console = |name: &'static str, act: &dyn Fn(&Operator<'_>)| -> Result<(), SnapshotError> {
        act(&op_view.host().global::<Operator>());
        // An answer may ask for more (the camera list, then the camera in use's preview): drain twice.
        op_view.drain(&op_mailbox);
        op_view.drain(&op_mailbox);
        let image = render(op_view.host().window(), name)?;
        shots.push(Shot { name, screen: Screen::Welcome, image });
        Ok(())
    };
    console("14-operator-queue", &|_| {})?;
    console("15-operator-requests", &|o| {
        o.invoke_show_page(ConsolePage::Requests);
        o.invoke_select_request("5f0c9a3e-0000-4000-8000-000000000001".into());
    })?;
    console("16-operator-delete", &|o| o.invoke_delete_request(o.get_selected_request()))?;
    console("17-operator-camera", &|o| {
        o.invoke_cancel_delete();
        o.invoke_show_page(ConsolePage::Camera);
    })?;
    console("18-operator-connection", &|o| {
        o.invoke_show_page(ConsolePage::Connection);
        o.invoke_test_connection();
    })?;
    Ok(shots)
}

/// From the welcome screen to "submitting" with the application saved.
fn submit_quickly(view: &KioskView) {
    let events = [
        Event::Start,
        Event::Accept,
        Event::ManualCapture,
        Event::ManualCapture,
        Event::ManualCapture,
        Event::ConfirmPhotos,
        Event::Key(Key::Text("grace@example.org".into())),
        Event::Focus(Field::Phone),
        Event::Key(Key::Text("+33 1 23 45 67 89".into())),
        Event::Submit,
    ];
    for e in events {
        view.handle(e);
        view.pump();
    }
}

/// Writes the gallery as `DIR/<name>.png`; returns the files written.
pub fn save_gallery(shots: &[Shot], dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(|source| SnapshotError::Dir { path: dir.to_owned(), source })?;
    let mut written = Vec::new();
    for s in shots {
        let path = dir.join(format!("{}.png", s.name));
        s.image.save(&path).map_err(|source| SnapshotError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}
