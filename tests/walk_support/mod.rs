//! The whole kiosk for the headless walk-through tests (`tests/ui_walk.rs`): the real `AppWindow` and `KioskView`
//! over the real `LiveServices` (a replayed camera whose frames the test chooses, the real checks and auto-capture,
//! the real encrypted queue in a temp dir), the real `Uploader` sending to a `Sandbox` on 127.0.0.1:0, and the
//! operator console over the same services. Controls are pressed by accessible label, the flow's clock is advanced
//! by hand, and the mailbox is pumped while polling with real-time deadlines.
//!
//! One Slint platform per test thread (the testing backend with the software renderer); every wait is bounded.

#![allow(dead_code)]

use crate::capture_common;
use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig};
use ekyc_kiosk::camera::{CameraConfig, SourceSetting};
use ekyc_kiosk::capture::CaptureConfig;
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::EncodeConfig;
use ekyc_kiosk::flow::{CameraMode, CaptureTarget, FlowConfig, Screen};
use ekyc_kiosk::queue::{EnrollmentSummary, QueueConfig, QueueHandle};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use ekyc_kiosk::uploader::{Uploader, UploaderConfig};
use ekyc_kiosk::view::ui::{AppWindow, Kiosk, OperatorWindow};
use ekyc_kiosk::view::{
    DemoOperatorApi, KioskView, LiveServices, Mailbox, OperatorView, QueueAlerts, QueueItem, ServiceError, Services,
};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementRoot};
use slint::ComponentHandle;
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub const KEY: &str = "ui-walk-test-key";
/// How often the loops below look again.
const POLL: Duration = Duration::from_millis(20);
/// Deadline for one auto-capture (frames at `FPS`, the checks every 150 ms, five good frames for a card).
pub const CAPTURE_SECS: u64 = 60;
/// Deadline for an application's outcome (the uploader and the sandbox's face detection).
pub const OUTCOME_SECS: u64 = 90;
/// The replayed camera's frame rate.
const FPS: u32 = 6;

/// What the customer holds in front of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shot {
    /// The ID card (the astronaut's portrait on it), filling the guide: passes the front and the back checks.
    Card,
    /// The astronaut's face, well placed: passes the face check and matches the card's portrait.
    Face,
    /// Nobody: an empty grey frame.
    Nobody,
}

/// Each shot as a 1280x720 JPEG (what a webcam delivers; quick to decode at the camera's rate, so several kiosks
/// fit on two cores), made once per process from `tests/fixtures`.
fn shot_jpeg(shot: Shot) -> &'static [u8] {
    static SHOTS: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    let shots = SHOTS.get_or_init(|| {
        let jpeg = |img: image::RgbImage| {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode_image(&img).unwrap();
            out
        };
        let nobody = image::RgbImage::from_pixel(capture_common::W, capture_common::H, image::Rgb([118, 124, 130]));
        [jpeg(capture_common::card_frame(true, 0.8, false)), jpeg(capture_common::good_face()), jpeg(nobody)]
    });
    match shot {
        Shot::Card => &shots[0],
        Shot::Face => &shots[1],
        Shot::Nobody => &shots[2],
    }
}

/// The replayed camera: a folder with one frame file that the test replaces (atomically, by a rename) to change
/// what the camera sees. The replay source reads the file again for every frame.
pub struct Camera {
    dir: tempfile::TempDir,
    shown: Cell<Option<Shot>>,
}

impl Camera {
    fn new() -> Camera {
        let camera = Camera { dir: tempfile::tempdir().unwrap(), shown: Cell::new(None) };
        camera.show(Shot::Card);
        camera
    }

    fn frame_path(&self) -> PathBuf {
        self.dir.path().join("frame.jpg")
    }

    /// Puts `shot` in front of the camera (no-op if it is there already).
    pub fn show(&self, shot: Shot) {
        if self.shown.get() == Some(shot) {
            return;
        }
        // Not a .png/.jpg name: the replay folder's listing ignores it.
        let tmp = self.dir.path().join("incoming.tmp");
        std::fs::write(&tmp, shot_jpeg(shot)).unwrap();
        std::fs::rename(&tmp, self.frame_path()).unwrap();
        self.shown.set(Some(shot));
    }

    fn config(&self) -> CameraConfig {
        CameraConfig {
            source: SourceSetting::Replay(self.dir.path().to_path_buf()),
            fps: FPS,
            ..CameraConfig::default()
        }
    }
}

/// The one `LiveServices` behind both windows (as in a kiosk whose operator screen runs in the same process), and a
/// handle the test keeps to ask it things directly.
#[derive(Clone)]
pub struct Shared(pub Rc<RefCell<LiveServices>>);

impl Services for Shared {
    fn is_demo(&self) -> bool {
        self.0.borrow().is_demo()
    }
    fn start_camera(&mut self, mode: CameraMode, session: u64) {
        self.0.borrow_mut().start_camera(mode, session)
    }
    fn stop_camera(&mut self) {
        self.0.borrow_mut().stop_camera()
    }
    fn capture(&mut self, target: CaptureTarget, session: u64) {
        self.0.borrow_mut().capture(target, session)
    }
    fn drop_capture(&mut self, target: CaptureTarget) {
        self.0.borrow_mut().drop_capture(target)
    }
    fn enqueue(&mut self, session: u64, email: Email, phone: Phone, supersedes: Option<String>) {
        self.0.borrow_mut().enqueue(session, email, phone, supersedes)
    }
    fn wipe(&mut self) {
        self.0.borrow_mut().wipe()
    }
    fn queue_items(&mut self) -> Result<Vec<QueueItem>, ServiceError> {
        self.0.borrow_mut().queue_items()
    }
    fn queue_alerts(&mut self) -> QueueAlerts {
        self.0.borrow_mut().queue_alerts()
    }
    fn acknowledge(&mut self, which: ekyc_kiosk::queue::Acknowledgeable) -> Result<(), ServiceError> {
        self.0.borrow_mut().acknowledge(which)
    }
    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.0.borrow_mut().retry(reference)
    }
    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.0.borrow_mut().purge(reference)
    }
    fn list_cameras(&mut self) {
        self.0.borrow_mut().list_cameras()
    }
    fn console_camera(&mut self, id: Option<&str>, face: bool) {
        self.0.borrow_mut().console_camera(id, face)
    }
    fn use_camera(&mut self, id: &str) {
        self.0.borrow_mut().use_camera(id)
    }
}

/// The queue's key file when the kiosk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFile {
    /// A new queue with its own key.
    Fine,
    /// The queue was used, then its key file was lost.
    Missing,
    /// The queue was used, then its key file was replaced by another queue's.
    Mismatch,
}

/// How to build a [`Rig`].
#[derive(Clone)]
pub struct Setup {
    pub flow: FlowConfig,
    pub api: ApiConfig,
    pub uploader: UploaderConfig,
    pub key: KeyFile,
    /// The camera the product uses on its demo defaults (nothing configured: `auto`, which finds no camera here and
    /// falls back to the demo pictures) instead of the replay the test controls.
    pub demo_camera: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            flow: FlowConfig::default(),
            api: ApiConfig::default(),
            // Quick retries, so a test sees the network come back within seconds.
            uploader: UploaderConfig {
                retry_base: Duration::from_millis(200),
                retry_cap: Duration::from_secs(2),
                retry_burst: 20,
                retry_refill: Duration::from_millis(100),
                key_probe_interval: Duration::from_secs(1),
            },
            key: KeyFile::Fine,
            demo_camera: false,
        }
    }
}

/// Installs the testing backend with the real software renderer on this thread (once per thread).
fn platform() {
    thread_local! { static SET: Cell<bool> = const { Cell::new(false) }; }
    if SET.with(|s| s.replace(true)) {
        return;
    }
    let options = i_slint_backend_testing::TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    };
    slint::platform::set_platform(Box::new(i_slint_backend_testing::TestingBackend::new(options))).unwrap();
}

/// The kiosk, its back end and the sandbox. Dropping it stops everything in order, within bounded joins.
pub struct Rig {
    pub camera: Camera,
    pub queue: QueueHandle,
    pub mailbox: Arc<Mailbox>,
    pub live: Shared,
    /// A client of the sandbox for the test's own checks (not the uploader's).
    pub client: ApiClient,
    view: Option<Rc<KioskView>>,
    operator: RefCell<Option<Rc<OperatorView<OperatorWindow>>>>,
    uploader: Option<Uploader>,
    sandbox: Option<Sandbox>,
    now: Cell<Duration>,
    _data: tempfile::TempDir,
}

impl Rig {
    pub fn new(setup: Setup) -> Rig {
        platform();
        let sandbox = Sandbox::start(SandboxOptions {
            config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
            ..SandboxOptions::loopback(ApiKey::new(KEY))
        })
        .unwrap();
        let client = |api: &ApiConfig| {
            ApiClient::new(api, &FaceMatchConfig::default(), sandbox.base_url(), ApiKey::new(KEY)).unwrap()
        };
        let data = tempfile::tempdir().unwrap();
        if setup.key != KeyFile::Fine {
            // A queue that was used (its key check is stored), then lost its key or got another queue's.
            QueueHandle::open(data.path(), &QueueConfig::default(), setup.uploader.retry_cap).unwrap().shutdown();
            let key = data.path().join("queue.key");
            std::fs::remove_file(&key).unwrap();
            if setup.key == KeyFile::Mismatch {
                let other = tempfile::tempdir().unwrap();
                QueueHandle::open(other.path(), &QueueConfig::default(), setup.uploader.retry_cap).unwrap().shutdown();
                std::fs::copy(other.path().join("queue.key"), &key).unwrap();
            }
        }
        let queue = QueueHandle::open(data.path(), &QueueConfig::default(), setup.uploader.retry_cap).unwrap();
        let uploader = Uploader::spawn(queue.clone(), Box::new(client(&setup.api)), &setup.uploader).unwrap();
        let camera = Camera::new();
        let mailbox = Mailbox::new(|| {});
        let camera_config = if setup.demo_camera {
            // Exactly what a newcomer's kiosk loads with nothing configured.
            let loaded =
                ekyc_kiosk::config::load_with_env(None, &[("EKYC_DATA_DIR".into(), "/nonexistent".into())]).unwrap();
            assert!(loaded.mode.is_demo() && loaded.config.camera.source == SourceSetting::Auto);
            loaded.config.camera
        } else {
            camera.config()
        };
        let live = LiveServices::new(
            mailbox.clone(),
            camera_config,
            CaptureConfig::default(),
            EncodeConfig::default(),
            queue.clone(),
        )
        .unwrap();
        let live = Shared(Rc::new(RefCell::new(live)));
        let app = AppWindow::new().unwrap();
        app.window().set_size(slint::PhysicalSize::new(1280, 800));
        app.show().unwrap();
        let view = KioskView::new(app, setup.flow, Box::new(live.clone()), mailbox.clone());
        view.pump();
        Rig {
            camera,
            queue,
            mailbox,
            live,
            client: client(&ApiConfig::default()),
            view: Some(view),
            operator: RefCell::new(None),
            uploader: Some(uploader),
            sandbox: Some(sandbox),
            now: Cell::new(Duration::ZERO),
            _data: data,
        }
    }

    pub fn view(&self) -> &KioskView {
        self.view.as_ref().unwrap()
    }

    pub fn app(&self) -> &AppWindow {
        self.view().app()
    }

    pub fn kiosk(&self) -> Kiosk<'_> {
        self.app().global::<Kiosk>()
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().unwrap()
    }

    pub fn screen(&self) -> Screen {
        self.view().state().screen
    }

    /// Lets the workers' reports in (what the event loop does when a worker wakes it).
    pub fn pump(&self) {
        self.view().pump();
    }

    /// Advances the flow's clock by `d` (the kiosk's 100 ms timer, fast-forwarded).
    pub fn tick(&self, d: Duration) {
        self.now.set(self.now.get() + d);
        self.view().tick(self.now.get());
    }

    pub fn find(&self, label: &str) -> Vec<ElementHandle> {
        ElementHandle::find_by_accessible_label(self.app(), label).collect()
    }

    pub fn shows(&self, label: &str) -> bool {
        !self.find(label).is_empty()
    }

    pub fn labels(&self) -> Vec<String> {
        crate::ui_support::labels_of(self.app())
    }

    /// Presses the one enabled control with this label, as a finger would, then lets the answers in.
    pub fn press(&self, label: &str) {
        press(self.app(), label, || self.context());
        self.pump();
    }

    /// Types on the on-screen keyboard, key by key.
    pub fn type_keys(&self, text: &str) {
        for ch in text.chars() {
            let label = if ch == ' ' { "Space".to_string() } else { ch.to_string() };
            self.press(&label);
        }
    }

    /// The accessible value of the one control with this label (a field's text).
    pub fn value(&self, label: &str) -> String {
        let found = controls(self.app(), label);
        assert_eq!(found.len(), 1, "{label:?}: {}", self.context());
        found[0].accessible_value().unwrap_or_default().to_string()
    }

    /// What the screen shows, what the queue holds and what the sandbox received: for failure messages.
    pub fn context(&self) -> String {
        let state = self.view().state();
        let queue: Vec<String> = self
            .queue
            .list()
            .map(|l| l.iter().map(|e| format!("{} {} {:?}", e.reference, e.state.as_str(), e.last_error)).collect())
            .unwrap_or_default();
        let calls: Vec<String> =
            self.sandbox().calls().iter().map(|c| format!("{:?} {:?}", c.endpoint, c.status)).collect();
        let (s, labels) = (&state.session, self.labels());
        format!(
            "\n  screen {:?}, problem {:?}, hint {:?}, status {:?}\n  labels {labels:?}\n  queue {queue:?}\n  \
             sandbox calls {calls:?}",
            state.screen, s.problem, s.capture.hint, state.status
        )
    }

    /// Pumps the mailbox until `done` holds, failing after `secs` seconds of real time.
    pub fn wait_until(&self, what: &str, secs: u64, mut done: impl FnMut(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.pump();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}: {}", self.context());
            std::thread::sleep(POLL);
        }
    }

    /// On a document screen: holds the card up and waits for the auto-capture to move on.
    pub fn take_document(&self) {
        let here = self.screen();
        assert!(
            matches!(here, Screen::DocumentFront | Screen::DocumentBack),
            "not a document screen: {}",
            self.context()
        );
        self.camera.show(Shot::Card);
        self.wait_until(&format!("the auto-capture on {here:?}"), CAPTURE_SECS, |r| r.screen() != here);
    }

    /// On the face screen: looks at the camera, sees the countdown start at 3, lets the clock run until the photo is
    /// taken. Returns the countdown values seen on screen.
    pub fn take_face(&self) -> Vec<i32> {
        assert_eq!(self.screen(), Screen::Face, "{}", self.context());
        self.camera.show(Shot::Face);
        let deadline = Instant::now() + Duration::from_secs(CAPTURE_SECS);
        let mut seen = Vec::new();
        loop {
            self.pump();
            if self.screen() != Screen::Face {
                return seen;
            }
            let countdown = self.kiosk().get_countdown();
            if countdown >= 0 {
                if self.kiosk().get_language() == "en" {
                    assert!(self.shows(&format!("Taking the photo in {countdown}")), "{}", self.context());
                }
                if seen.last() != Some(&countdown) {
                    seen.push(countdown);
                }
                self.tick(Duration::from_secs(1));
            }
            assert!(Instant::now() < deadline, "the face was never captured: {}", self.context());
            std::thread::sleep(POLL);
        }
    }

    /// Takes whatever photos the flow asks for until the review, then confirms them (on to the contact screen).
    pub fn take_missing_photos(&self) {
        loop {
            match self.screen() {
                Screen::DocumentFront | Screen::DocumentBack => self.take_document(),
                Screen::Face => {
                    self.take_face();
                }
                Screen::Review => {
                    for target in ["Front of the card", "Back of the card", "Your face"] {
                        assert!(self.shows(target), "{}", self.context());
                    }
                    let k = self.kiosk();
                    for photo in [k.get_front_photo(), k.get_back_photo(), k.get_face_photo()] {
                        assert!(photo.size().width > 0, "a photo is missing on the review: {}", self.context());
                    }
                    self.press("The photos are fine");
                }
                Screen::Contact => return,
                other => panic!("unexpected {other:?} while taking photos: {}", self.context()),
            }
        }
    }

    /// From the welcome screen to the contact details, filled in on the keyboard.
    pub fn walk_to_contact(&self, email: &str, phone: &str) {
        assert_eq!(self.screen(), Screen::Welcome, "{}", self.context());
        self.press("Start");
        self.press("I agree");
        self.take_missing_photos();
        assert!(self.shows("How can we reach you?"), "{}", self.context());
        self.type_contact(email, phone);
    }

    /// Replaces both contact fields by typing.
    pub fn type_contact(&self, email: &str, phone: &str) {
        self.press("Email address");
        self.press("Clear");
        self.type_keys(email);
        self.press("Mobile phone number, with the country code");
        self.press("Clear");
        self.type_keys(phone);
        assert_eq!(self.value("Email address"), email);
        assert_eq!(self.value("Mobile phone number, with the country code"), phone);
    }

    /// Sends the application and waits until the submitting screen gives way; returns the screen and the reference.
    pub fn submit(&self) -> (Screen, String) {
        self.press("Send my application");
        assert!(
            matches!(self.screen(), Screen::Submitting | Screen::Saved | Screen::AskStaff | Screen::Retry),
            "{}",
            self.context()
        );
        self.wait_until("the application's outcome", OUTCOME_SECS, |r| r.screen() != Screen::Submitting);
        let state = self.view().state();
        let reference = state.reference().unwrap_or_else(|| panic!("no reference: {}", self.context()));
        (state.screen, reference.to_string())
    }

    /// The queue's entry for `reference`.
    pub fn entry(&self, reference: &str) -> Option<EnrollmentSummary> {
        self.queue.list().unwrap().into_iter().find(|e| e.reference == reference)
    }

    /// Waits until the queue's entry for `reference` is in `state`.
    pub fn wait_for_state(&self, reference: &str, state: &str, secs: u64) {
        self.wait_until(&format!("{reference} to be {state}"), secs, |r| {
            r.entry(reference).is_some_and(|e| e.state.as_str() == state)
        });
    }

    /// Opens the operator console over the same services (one per rig).
    pub fn operator(&self) -> Console {
        let app = OperatorWindow::new().unwrap();
        app.window().set_size(slint::PhysicalSize::new(1280, 800));
        app.show().unwrap();
        let services: Box<dyn Services> = Box::new(self.live.clone());
        // The console's requests and connection pages are covered by tests/ui_console.rs; here only its queue.
        let api = DemoOperatorApi::new(Mailbox::new(|| {}));
        let view = OperatorView::new(app, Rc::new(RefCell::new(services)), Box::new(api));
        view.open();
        *self.operator.borrow_mut() = Some(view.clone());
        Console { view }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // The windows and the services first (the capture thread and the queue events stop), then the uploader, the
        // queue and the sandbox; each join is bounded.
        self.operator.borrow_mut().take();
        self.view.take();
        if let Some(u) = self.uploader.take() {
            u.shutdown();
        }
        self.queue.shutdown();
        if let Some(sb) = self.sandbox.take() {
            sb.shutdown();
        }
    }
}

/// The operator console window.
pub struct Console {
    view: Rc<OperatorView<OperatorWindow>>,
}

impl Console {
    pub fn app(&self) -> &OperatorWindow {
        self.view.host()
    }

    pub fn shows(&self, label: &str) -> bool {
        ElementHandle::find_by_accessible_label(self.app(), label).next().is_some()
    }

    pub fn labels(&self) -> Vec<String> {
        crate::ui_support::labels_of(self.app())
    }

    pub fn press(&self, label: &str) {
        press(self.app(), label, || format!("{:?}", self.labels()));
    }

    /// The row of `reference` (a list item), if listed.
    pub fn row(&self, reference: &str) -> Option<ElementHandle> {
        controls(self.app(), reference).into_iter().find(|e| e.accessible_role() == Some(AccessibleRole::ListItem))
    }

    /// The texts in the row of `reference`.
    pub fn row_texts(&self, reference: &str) -> Vec<String> {
        let row = self.row(reference).unwrap_or_else(|| panic!("no row {reference}: {:?}", self.labels()));
        row.query_descendants()
            .find_all()
            .into_iter()
            .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Taps the row of `reference`.
    pub fn select(&self, reference: &str) {
        let row = self.row(reference).unwrap_or_else(|| panic!("no row {reference}: {:?}", self.labels()));
        row.invoke_accessible_default_action();
        assert_eq!(row.accessible_item_selected(), Some(true), "{:?}", self.labels());
    }
}

/// The controls (buttons, fields, list items) with this label; plain texts are left out.
fn controls(root: &impl ElementRoot, label: &str) -> Vec<ElementHandle> {
    ElementHandle::find_by_accessible_label(root, label)
        .filter(|e| {
            matches!(
                e.accessible_role(),
                Some(AccessibleRole::Button | AccessibleRole::TextInput | AccessibleRole::ListItem)
            )
        })
        .collect()
}

fn press(root: &impl ElementRoot, label: &str, context: impl Fn() -> String) {
    let found: Vec<ElementHandle> =
        controls(root, label).into_iter().filter(|e| e.accessible_enabled() != Some(false)).collect();
    assert_eq!(found.len(), 1, "expected one enabled {label:?}: {}", context());
    found[0].invoke_accessible_default_action();
}
