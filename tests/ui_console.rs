//! The operator console, headless, through accessible labels: the staff PIN on the kiosk (wrong PINs, the lock,
//! the console over the welcome screen only, exit and the idle close), the requests page against a real sandbox on
//! 127.0.0.1:0 (list, accept, delete after a confirmation), the connection test (passing, and failing on a closed
//! port), and the camera page over the real camera worker and checks with a replayed camera (choices, live preview,
//! measurements, face or card checks, the camera the kiosk uses). Every wait is bounded.

mod capture_common;
mod ui_support;

use ekyc_kiosk::api::{ApiClient, ApiConfig, DocumentUpload, ErrorCode, FaceMatchConfig, ImageBody, NewRequest};
use ekyc_kiosk::camera::{CameraConfig, SourceSetting};
use ekyc_kiosk::capture::CaptureConfig;
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::flow::staff::{StaffConfig, StaffScreen};
use ekyc_kiosk::flow::{Event, FlowConfig, Screen};
use ekyc_kiosk::queue::{DB_FILE, NewEnrollment, QueueConfig, QueueHandle};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::{ApiKey, StaffPin};
use ekyc_kiosk::view::ui::{Kiosk, Operator, OperatorWindow, Texts};
use ekyc_kiosk::view::{
    ApiFailure, CHOICE_FILE, CameraChoice, DemoOperatorApi, LiveOperatorApi, LiveServices, Mailbox, OperatorView,
    STAFF_LOCK_FILE, Services, StaffLockFile,
};
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use slint::ComponentHandle;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "ui-console-test-key";

fn staff(k: &ui_support::Kiosk) {
    let pin = StaffPin::parse("246813").unwrap();
    k.view.enable_staff(
        StaffConfig::new(Some(pin), Duration::from_secs(80)),
        Box::new(DemoOperatorApi::new(k.mailbox.clone())),
        None,
    );
}

fn pin(k: &ui_support::Kiosk, digits: &str) {
    k.type_keys(digits);
    k.press("Enter");
}

#[test]
fn the_staff_pin_opens_the_console_over_the_welcome_screen_only() {
    let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, false);
    assert!(!k.shows("Staff"), "no PIN configured: no staff button");
    assert!(k.shows("Checking the connection…"), "{:?}", k.labels());
    staff(&k);
    assert!(k.shows("Staff"));
    // With the console's API the kiosk checks the connection itself, so an idle kiosk's status bar knows.
    k.wait(Duration::from_millis(100));
    k.view.pump();
    assert!(k.shows("Online"), "{:?}", k.labels());

    // During a customer's session there is no way in.
    k.press("Start");
    assert!(!k.shows("Staff"));
    k.app().global::<Kiosk>().invoke_open_staff();
    assert_eq!(k.view.staff().screen, StaffScreen::Closed, "the intent is refused too");
    k.view.handle(Event::Finish);
    assert_eq!(k.view.state().screen, Screen::Welcome);

    k.press("Staff");
    assert!(k.shows("Staff only: enter the PIN"), "{:?}", k.labels());
    k.type_keys("13");
    assert!(k.shows("2 digits typed"), "the pad shows dots: {:?}", k.labels());
    k.press("Erase");
    k.press("Erase");
    pin(&k, "1357");
    assert!(k.shows("Wrong PIN. 2 tries left."), "{:?}", k.labels());
    pin(&k, "9999");
    assert!(k.shows("Wrong PIN. 1 try left."), "{:?}", k.labels());
    pin(&k, "0000");
    assert!(k.shows("Too many wrong PINs. Try again in 60 seconds."), "{:?}", k.labels());
    // Locked: the keys are disabled, even for the right PIN.
    assert!(k.controls("2").iter().all(|e| e.accessible_enabled() == Some(false)));
    k.wait(Duration::from_secs(30));
    assert!(k.shows("Too many wrong PINs. Try again in 30 seconds."), "{:?}", k.labels());
    k.wait(Duration::from_secs(31));
    assert!(!k.shows("Too many wrong PINs. Try again in 1 second."));

    pin(&k, "246813");
    assert_eq!(k.view.staff().screen, StaffScreen::Console);
    assert!(k.shows("Applications on this kiosk"), "{:?}", k.labels());
    // The DEMO queue's applications, one that needs the customer with the contact details to follow up.
    assert!(k.labels().iter().any(|l| l.contains("@")), "{:?}", k.labels());

    // The requests page (the DEMO API): accept one.
    k.press("Requests");
    assert!(k.shows("ana.silva@example.com"), "{:?}", k.labels());
    k.press("ana.silva@example.com");
    k.press("Accept");
    // Accepting cannot be undone: the PIN again, over the console.
    assert!(
        k.labels().iter().any(|l| l.starts_with("Enter the PIN again to accept request 5f0c9a3e")),
        "{:?}",
        k.labels()
    );
    assert_eq!(k.view.staff().screen, StaffScreen::Confirm);
    pin(&k, "246813");
    assert_eq!(k.view.staff().screen, StaffScreen::Console);
    k.view.pump();
    assert!(
        k.labels().iter().any(|l| l.starts_with("Request 5f0c9a3e") && l.ends_with("accepted.")),
        "{:?}",
        k.labels()
    );
    assert!(!k.shows("ana.silva@example.com"), "an accepted request leaves the pending list");
    k.press("Accepted");
    assert!(k.shows("ana.silva@example.com"), "{:?}", k.labels());

    k.press("Exit");
    assert_eq!(k.view.staff().screen, StaffScreen::Closed);
    assert!(k.shows("Start") && !k.shows("Applications on this kiosk"));

    // Left open, the console closes by itself.
    k.press("Staff");
    pin(&k, "246813");
    assert!(k.shows("Applications on this kiosk"));
    k.wait(Duration::from_secs(79));
    assert!(k.shows("Applications on this kiosk"));
    k.wait(Duration::from_secs(2));
    assert!(!k.shows("Applications on this kiosk") && k.shows("Start"), "{:?}", k.labels());
}

fn staff_with_lock(k: &ui_support::Kiosk, dir: &Path) {
    k.view.enable_staff(
        StaffConfig::new(Some(StaffPin::parse("246813").unwrap()), Duration::from_secs(80)),
        Box::new(DemoOperatorApi::new(k.mailbox.clone())),
        Some(StaffLockFile::new(dir)),
    );
}

/// Runs `f` on a kiosk of its own, in a thread of its own (Slint's testing platform is one per thread): a restart.
fn run_kiosk(dir: &Path, f: impl FnOnce(&ui_support::Kiosk) + Send) {
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, false);
            staff_with_lock(&k, dir);
            k.press("Staff");
            f(&k);
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    });
}

#[test]
fn purge_asks_for_the_pin_again_and_the_lock_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join(STAFF_LOCK_FILE);
    run_kiosk(dir.path(), |k| {
        pin(k, "246813");
        k.press("DEMO-0103");
        k.press("Purge from this kiosk");
        assert!(k.shows("Enter the PIN again to delete DEMO-0103 and its images from this kiosk"), "{:?}", k.labels());
        // Cancel: back to the console, nothing purged.
        k.press("Cancel");
        assert!(k.shows("DEMO-0103") && k.shows("Applications on this kiosk"), "{:?}", k.labels());
        // The right PIN purges it.
        k.press("Purge from this kiosk");
        pin(k, "246813");
        assert!(k.shows("DEMO-0103 and its images were deleted from this kiosk."), "{:?}", k.labels());
        assert!(!k.controls("DEMO-0103").iter().any(|e| e.accessible_role() == Some(AccessibleRole::ListItem)));
        // Someone who does not know the PIN: two wrong tries at the console, kept on disk.
        k.press("DEMO-0102");
        k.press("Purge from this kiosk");
        pin(k, "111111");
        pin(k, "222222");
        assert!(k.shows("Wrong PIN. 1 try left."), "{:?}", k.labels());
    });
    assert!(lock.exists());
    // A restart (the plug pulled): the count is still there, so one more wrong PIN locks the pad.
    run_kiosk(dir.path(), |k| {
        pin(k, "333333");
        assert!(k.shows("Too many wrong PINs. Try again in 60 seconds."), "{:?}", k.labels());
    });
    // Restarted again while locked: still locked, even for the right PIN; the lock runs on the wall clock.
    run_kiosk(dir.path(), |k| {
        assert!(k.labels().iter().any(|l| l.starts_with("Too many wrong PINs. Try again in")), "{:?}", k.labels());
        assert!(k.controls("2").iter().all(|e| e.accessible_enabled() == Some(false)));
    });
    // Fast-forward the stored lock's end (rather than sleeping a minute): then the right PIN opens and clears it.
    let text = std::fs::read_to_string(&lock).unwrap();
    let text: String = text
        .lines()
        .map(|l| if l.starts_with("locked_until") { "locked_until = 1\n".to_string() } else { format!("{l}\n") })
        .collect();
    std::fs::write(&lock, text).unwrap();
    run_kiosk(dir.path(), |k| {
        pin(k, "246813");
        assert_eq!(k.view.staff().screen, StaffScreen::Console);
    });
    assert!(!lock.exists(), "a right PIN clears the record");
    // A damaged record fails closed: the pad starts locked.
    std::fs::write(&lock, "nonsense").unwrap();
    run_kiosk(dir.path(), |k| {
        assert!(k.shows("Too many wrong PINs. Try again in 60 seconds."), "{:?}", k.labels());
    });
}

#[test]
fn a_damaged_queue_and_expired_applications_stay_on_the_console_until_acknowledged() {
    ui_support::install_platform();
    let dir = tempfile::tempdir().unwrap();
    // A queue database that is not one at all: moved to quarantine at open, a fresh queue made.
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a_u8; 64 * 1024]).unwrap();
    let cfg = QueueConfig { max_age: Duration::from_millis(400), ..QueueConfig::default() };
    let q = QueueHandle::open(dir.path(), &cfg, Duration::from_secs(60)).unwrap();
    // An application that is never sent (no uploader) and expires.
    let jpeg = |f: &str| {
        UploadJpeg::from_operator_bytes(&file(&format!("assets/demo/{f}")), &EncodeConfig::default()).unwrap()
    };
    q.enqueue(NewEnrollment {
        email: Email::parse("late@example.com").unwrap(),
        phone: Phone::parse("+447946000043").unwrap(),
        front: jpeg("id-front.jpg"),
        back: Some(jpeg("id-back.jpg")),
        side: None,
        face: jpeg("face.jpg"),
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while q.status().unwrap().expired_unacknowledged == 0 {
        assert!(Instant::now() < deadline, "the application did not expire");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mailbox = Mailbox::new(|| {});
    let camera = CameraConfig { source: SourceSetting::Demo, ..CameraConfig::default() };
    let live = LiveServices::new(mailbox.clone(), camera, CaptureConfig::default(), EncodeConfig::default(), q.clone())
        .unwrap();
    let services: Box<dyn Services> = Box::new(live);
    let window = OperatorWindow::new().unwrap();
    window.window().set_size(slint::PhysicalSize::new(1280, 800));
    window.show().unwrap();
    let view =
        OperatorView::new(window, Rc::new(RefCell::new(services)), Box::new(DemoOperatorApi::new(mailbox.clone())));
    view.open();
    let w = view.host();
    let has = |prefix: &str| labels(w).iter().any(|l| l.starts_with(prefix));
    assert!(has("The queue's database was damaged. It was moved aside"), "{:?}", labels(w));
    assert!(has("1 application could not be sent in time and was deleted from this kiosk"), "{:?}", labels(w));

    // Each goes only when acknowledged, and stays gone across a restart (kept in the queue).
    press(w, "Acknowledge the damaged database alert");
    assert!(!has("The queue's database was damaged"), "{:?}", labels(w));
    assert!(has("1 application could not be sent in time"));
    press(w, "Acknowledge the deleted applications alert");
    assert!(!has("1 application could not be sent in time"), "{:?}", labels(w));
    drop(view);
    q.shutdown();
    let q = QueueHandle::open(dir.path(), &cfg, Duration::from_secs(60)).unwrap();
    let st = q.status().unwrap();
    assert_eq!((st.quarantine, st.expired_unacknowledged), (None, 0));
    assert_eq!(st.expired_purged, 1, "the total is kept for the record");
    q.shutdown();
}

/// The operator window over the DEMO services and `api`, with its mailbox.
fn console(
    api: impl FnOnce(Arc<Mailbox>) -> Box<dyn ekyc_kiosk::view::OperatorApi>,
) -> (Rc<OperatorView<OperatorWindow>>, Arc<Mailbox>) {
    let mailbox = Mailbox::new(|| {});
    let services: Box<dyn Services> = Box::new(ekyc_kiosk::view::demo::StillServices::new(mailbox.clone()));
    let window = OperatorWindow::new().unwrap();
    window.window().set_size(slint::PhysicalSize::new(1280, 800));
    window.show().unwrap();
    let view = OperatorView::new(window, Rc::new(RefCell::new(services)), api(mailbox.clone()));
    view.open();
    (view, mailbox)
}

fn labels(w: &OperatorWindow) -> Vec<String> {
    ui_support::labels_of(w)
}

fn shows(w: &OperatorWindow, label: &str) -> bool {
    ElementHandle::find_by_accessible_label(w, label).next().is_some()
}

/// Presses the one enabled control with this label.
fn press(w: &OperatorWindow, label: &str) {
    let found: Vec<ElementHandle> = ElementHandle::find_by_accessible_label(w, label)
        .filter(|e| matches!(e.accessible_role(), Some(AccessibleRole::Button | AccessibleRole::ListItem)))
        .filter(|e| e.accessible_enabled() != Some(false))
        .collect();
    assert_eq!(found.len(), 1, "expected one enabled {label:?}; on screen: {:?}", labels(w));
    found[0].invoke_accessible_default_action();
}

/// Drains the console's answers until `done` holds, for at most `secs` seconds.
fn wait_until(
    view: &OperatorView<OperatorWindow>,
    mailbox: &Mailbox,
    secs: u64,
    done: impl Fn(&OperatorWindow) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        view.drain(mailbox);
        if done(view.host()) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// Two requests on the sandbox, made through the API as a kiosk would.
fn seed(api: &ApiClient) {
    let front = file("assets/demo/id-front.jpg");
    for (email, phone) in [("first@example.com", "+447700900201"), ("second@example.com", "+447700900202")] {
        let doc = DocumentUpload { front: ImageBody::from_bytes(&front), back: None, side: None };
        let document_id = api.upload_document(doc).unwrap().document_id;
        let req = NewRequest { email: Email::parse(email).unwrap(), phone: Phone::parse(phone).unwrap(), document_id };
        api.create_request(&req).unwrap();
    }
}

#[test]
fn an_unreachable_api_shows_offline_and_is_checked_again_later() {
    let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, false);
    let mut api = DemoOperatorApi::new(k.mailbox.clone());
    api.fail_with = Some(ApiFailure::new(ErrorCode::NetworkUnreachable, "connection refused"));
    k.view.enable_staff(StaffConfig::new(None, Duration::from_secs(80)), Box::new(api), None);
    k.wait(Duration::from_millis(100));
    k.view.pump();
    assert!(k.shows("Offline"), "{:?}", k.labels());
    assert!(!k.shows("Staff"), "no PIN: no staff button, but the connection is still checked");
}

#[test]
fn requests_are_accepted_and_deleted_on_the_api_and_the_connection_is_tested() {
    ui_support::install_platform();
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let client =
        || ApiClient::new(&ApiConfig::default(), &FaceMatchConfig::default(), sb.base_url(), ApiKey::new(KEY)).unwrap();
    seed(&client());
    let (view, mb) = console(|mb| Box::new(LiveOperatorApi::spawn(client(), true, mb).unwrap()));
    let w = view.host();
    assert!(shows(w, "DEMO: sample pictures, test service"), "{:?}", labels(w));

    press(w, "Requests");
    assert!(wait_until(&view, &mb, 20, |w| shows(w, "second@example.com")), "{:?}", labels(w));
    assert!(shows(w, "first@example.com"));
    press(w, "first@example.com");
    press(w, "Accept");
    assert!(wait_until(&view, &mb, 20, |w| !shows(w, "first@example.com")), "{:?}", labels(w));
    let accepted = client().list_requests(true).unwrap();
    assert_eq!(accepted.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(), ["first@example.com"]);

    // Delete asks first; "Keep it" keeps it.
    press(w, "second@example.com");
    press(w, "Delete…");
    assert!(shows(w, "Delete this request?"), "{:?}", labels(w));
    press(w, "Keep it");
    assert!(!shows(w, "Delete this request?"));
    assert_eq!(client().list_requests(false).unwrap().len(), 1);
    press(w, "Delete…");
    press(w, "Delete for good");
    assert!(wait_until(&view, &mb, 20, |w| shows(w, "No pending requests.")), "{:?}", labels(w));
    assert!(client().list_requests(false).unwrap().is_empty(), "deleted on the API");
    assert!(labels(w).iter().any(|l| l.ends_with("deleted from the API.")), "{:?}", labels(w));

    // The accepted list; accept is not offered there.
    press(w, "Accepted");
    assert!(wait_until(&view, &mb, 20, |w| shows(w, "first@example.com")), "{:?}", labels(w));

    // The connection test against the sandbox.
    press(w, "Connection");
    assert!(labels(w).iter().any(|l| l.contains("built-in sandbox at http://127.0.0.1:")), "{:?}", labels(w));
    press(w, "Test the connection");
    assert!(
        wait_until(&view, &mb, 20, |w| labels(w)
            .iter()
            .any(|l| l.starts_with("Connected in ") && l.contains("accepted this kiosk"))),
        "{:?}",
        labels(w)
    );
    drop(view);
    sb.shutdown();
}

#[test]
fn the_connection_test_says_why_it_failed() {
    ui_support::install_platform();
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let cfg = ApiConfig { connect_timeout: Duration::from_secs(2), ..ApiConfig::default() };
    let client = ApiClient::new(&cfg, &FaceMatchConfig::default(), url, ApiKey::new(KEY)).unwrap();
    let (view, mb) = console(|mb| Box::new(LiveOperatorApi::spawn(client, false, mb).unwrap()));
    let w = view.host();
    press(w, "Connection");
    assert!(labels(w).iter().any(|l| l == &format!("Applications go to http://127.0.0.1:{port}.")), "{:?}", labels(w));
    press(w, "Test the connection");
    assert!(wait_until(&view, &mb, 20, |w| shows(w, "The test failed: network_unreachable")), "{:?}", labels(w));
    assert_eq!(w.global::<Operator>().get_connection_error(), "network_unreachable");
    // What it means for the operator (the shared table's words, translated by the console) and the technical words.
    assert!(shows(w, ErrorCode::NetworkUnreachable.prompt().operator), "{:?}", labels(w));
    assert!(labels(w).iter().any(|l| l.starts_with("Technical detail: ")), "{:?}", labels(w));
    // The requests page says the same, instead of an empty list.
    press(w, "Requests");
    assert!(
        wait_until(&view, &mb, 20, |w| shows(w, "The requests could not be listed.")
            && labels(w).iter().any(|l| l.starts_with("Technical detail: [network_unreachable] "))),
        "{:?}",
        labels(w)
    );
    assert!(shows(w, ErrorCode::NetworkUnreachable.prompt().operator), "{:?}", labels(w));
    // The list is unknown, not empty.
    assert!(shows(w, "The list is not available: see the message below."), "{:?}", labels(w));
    assert!(!shows(w, "No pending requests."), "{:?}", labels(w));
    // In French, the explanation too.
    slint::select_bundled_translation("fr").unwrap();
    let fr = w.global::<Texts>().invoke_operator_explanation("network_unreachable".into());
    slint::select_bundled_translation("en").unwrap();
    assert!(fr.starts_with("L'hôte de l'API est injoignable"), "{fr}");
}

#[test]
fn the_camera_page_previews_a_camera_with_its_checks_and_chooses_the_kiosks() {
    ui_support::install_platform();
    let frames = tempfile::tempdir().unwrap();
    capture_common::good_face().save(frames.path().join("face.png")).unwrap();
    let replay = format!("replay:{}", frames.path().display());
    let camera =
        CameraConfig { source: SourceSetting::Replay(frames.path().to_path_buf()), fps: 10, ..CameraConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), Duration::from_secs(60)).unwrap();
    let mailbox = Mailbox::new(|| {});
    // The kiosk's services as `ekyc-kiosk` starts them (remembering the operator's camera choice in the data
    // dir), and the console over them.
    let start = || {
        let mut live = LiveServices::new(
            mailbox.clone(),
            camera.clone(),
            CaptureConfig::default(),
            EncodeConfig::default(),
            q.clone(),
        )
        .unwrap();
        live.remember_camera(CameraChoice::new(dir.path()));
        live
    };
    let open_console = |live: LiveServices| {
        let services: Box<dyn Services> = Box::new(live);
        let window = OperatorWindow::new().unwrap();
        window.window().set_size(slint::PhysicalSize::new(1280, 800));
        window.show().unwrap();
        let view =
            OperatorView::new(window, Rc::new(RefCell::new(services)), Box::new(DemoOperatorApi::new(mailbox.clone())));
        view.open();
        view
    };
    let live = start();
    assert!(!live.is_demo());
    let view = open_console(live);
    let w = view.host();
    let op = || w.global::<Operator>();

    press(w, "Camera");
    // The configured replay is in use and previewed at once, with the face checks' measurements.
    assert!(wait_until(&view, &mailbox, 30, |_| op().get_camera_live()), "no preview: {:?}", labels(w));
    assert_eq!(op().get_camera_in_use(), replay.as_str());
    assert_eq!(op().get_camera_previewed(), replay.as_str());
    assert!(shows(w, &format!("Recorded frames: {}", frames.path().display())), "{:?}", labels(w));
    assert!(shows(w, "Demo pictures (no camera)"));
    assert!(
        wait_until(&view, &mailbox, 30, |w| shows(w, "The checks pass: this picture would be taken.")),
        "the good face passes: {:?}",
        labels(w)
    );
    assert!(shows(w, "Face height (share of the frame)") && shows(w, "Sharpness"), "{:?}", labels(w));

    // The same picture checked as an ID card fails, and says why.
    press(w, "ID card");
    assert!(
        wait_until(&view, &mailbox, 30, |w| shows(w, "Card fills the guide (share)")
            && !shows(w, "The checks pass: this picture would be taken.")),
        "{:?}",
        labels(w)
    );

    // Preview the demo pictures and make the kiosk use them.
    press(w, "Demo pictures (no camera)");
    assert_eq!(op().get_camera_previewed(), "demo");
    assert!(wait_until(&view, &mailbox, 30, |_| op().get_camera_live()), "{:?}", labels(w));
    press(w, "Use this camera");
    assert!(wait_until(&view, &mailbox, 20, |_| op().get_camera_in_use() == "demo"), "{:?}", labels(w));
    assert!(
        shows(
            w,
            "The customer screens now use the camera marked in use. The kiosk keeps this choice when it restarts."
        ),
        "{:?}",
        labels(w)
    );
    assert!(dir.path().join(CHOICE_FILE).exists());

    // Leaving the page stops the preview.
    press(w, "Queue");
    assert!(!op().get_camera_live() && op().get_camera_previewed().is_empty());
    drop(view);

    // After a restart the kiosk uses the demo pictures, as chosen; the operator goes back to the configured camera.
    let live = start();
    assert!(live.is_demo(), "the remembered demo choice applies from the start (the status bar's DEMO badge)");
    let view = open_console(live);
    let w = view.host();
    let op = || w.global::<Operator>();
    press(w, "Camera");
    assert!(wait_until(&view, &mailbox, 20, |_| op().get_camera_in_use() == "demo"), "{:?}", labels(w));
    press(w, &format!("Recorded frames: {}", frames.path().display()));
    press(w, "Use this camera");
    assert!(wait_until(&view, &mailbox, 20, |_| op().get_camera_in_use() == replay.as_str()), "{:?}", labels(w));
    assert!(!dir.path().join(CHOICE_FILE).exists(), "the configured camera needs nothing remembered");
    drop(view);

    // A choice made over another configured camera is stale: the configuration applies.
    CameraChoice::new(dir.path()).save("device:7", "demo").unwrap();
    assert!(!start().is_demo());
    q.shutdown();
}
