//! The kiosk UI's link to the real durable queue ([`QueueLink`], what `LiveServices` saves through): an application
//! saved from the UI side is committed in a temp data dir, sent by the real uploader to a sandbox on 127.0.0.1:0,
//! and the UI's mailbox gets Saved (with the reference), Progress, Accepted and the status bar's reports in order;
//! the operator calls see the same queue. Then the whole `LiveServices` path: a replayed camera (frames made here
//! from `tests/fixtures`) passes the real checks, the held photos are saved, sent and accepted, kept for a retry
//! after the save and dropped by the wipe. Bounded by deadlines.

mod capture_common;

use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig};
use ekyc_kiosk::camera::{CameraConfig, SourceSetting};
use ekyc_kiosk::capture::CaptureConfig;
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::flow::{CameraMode, CaptureTarget, Event, KioskStatus};
use ekyc_kiosk::queue::{NewEnrollment, QueueConfig, QueueHandle};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use ekyc_kiosk::uploader::{Uploader, UploaderConfig};
use ekyc_kiosk::view::{LiveServices, Mailbox, QueueLink, Report, ServiceError, Services};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "ui-queue-test-key";

fn demo(name: &str) -> UploadJpeg {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name)).unwrap();
    UploadJpeg::from_operator_bytes(&bytes, &EncodeConfig::default()).unwrap()
}

fn events(mailbox: &Mailbox) -> Vec<Event> {
    mailbox
        .take()
        .1
        .into_iter()
        .filter_map(|r| match r {
            Report::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// A sandbox on 127.0.0.1:0 and a client for it.
fn sandbox() -> (Sandbox, ApiClient) {
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let client =
        ApiClient::new(&ApiConfig::default(), &FaceMatchConfig::default(), sb.base_url(), ApiKey::new(KEY)).unwrap();
    (sb, client)
}

/// Drains the mailbox into `seen` until `done` holds for one of its events or the deadline passes.
fn wait_for(mailbox: &Mailbox, seen: &mut Vec<Event>, secs: u64, done: impl Fn(&Event) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        for e in events(mailbox) {
            let hit = done(&e);
            seen.push(e);
            if hit {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_saved_application_is_sent_and_its_result_reaches_the_ui() {
    let (sb, client) = sandbox();
    let up_cfg = UploaderConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), up_cfg.retry_cap).unwrap();
    let mailbox = Mailbox::new(|| {});
    let link = QueueLink::new(q.clone(), mailbox.clone()).unwrap();
    // The first status: nothing waiting, the network not known yet.
    assert_eq!(events(&mailbox), vec![Event::Status(KioskStatus { online: None, pending: 0 })]);
    assert_eq!(link.retry("NOPE-123"), Err(ServiceError::NotFound("NOPE-123".into())));

    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let new = NewEnrollment {
        email: Email::parse("ana@example.com").unwrap(),
        phone: Phone::parse("+447946000042").unwrap(),
        front: demo("id-front.jpg"),
        back: Some(demo("id-back.jpg")),
        side: None,
        face: demo("face.jpg"),
    };
    link.enqueue(42, new, move || flag.store(true, Ordering::SeqCst));
    let uploader = Uploader::spawn(q.clone(), Box::new(client), &up_cfg).unwrap();

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !seen.iter().any(|e| matches!(e, Event::Accepted { .. })) {
        seen.extend(events(&mailbox));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The status after the result follows it closely.
    std::thread::sleep(Duration::from_millis(300));
    seen.extend(events(&mailbox));
    uploader.shutdown();

    let reference = seen
        .iter()
        .find_map(|e| match e {
            Event::Saved { session: 42, reference } => Some(reference.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Saved report: {seen:?}"));
    assert!(released.load(Ordering::SeqCst), "the held photos were not released after the save");
    let pos = |pred: &dyn Fn(&Event) -> bool| seen.iter().position(pred);
    let saved_at = pos(&|e| matches!(e, Event::Saved { .. })).unwrap();
    let accepted_at = pos(&|e| matches!(e, Event::Accepted { reference: r } if *r == reference))
        .unwrap_or_else(|| panic!("no Accepted for {reference}: {seen:?}"));
    assert!(saved_at < accepted_at);
    let progress: Vec<(u8, u8)> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Progress { reference: r, done, total } if *r == reference => Some((*done, *total)),
            _ => None,
        })
        .collect();
    assert!(!progress.is_empty(), "no progress: {seen:?}");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "progress goes back: {progress:?}");
    assert_eq!(progress.last(), Some(&(3, 3)));
    assert!(!seen.iter().any(|e| matches!(e, Event::Rejected { .. } | Event::SaveFailed { .. })), "{seen:?}");
    // The status bar ends online with nothing waiting; while it was being sent it counted one.
    let statuses: Vec<KioskStatus> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert!(statuses.iter().any(|s| s.pending == 1), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&KioskStatus { online: Some(true), pending: 0 }));

    // It really reached the API, and the operator's view agrees.
    assert!(sb.calls().iter().any(|c| c.status == Some(200) || c.status == Some(201)), "{:?}", sb.calls());
    let items = link.items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].reference.as_str(), items[0].state.as_str()), (reference.as_str(), "done"));
    assert_eq!(link.alerts(), Default::default());
    link.purge(&reference).unwrap();
    assert!(link.items().unwrap().is_empty());

    drop(link);
    q.shutdown();
    sb.shutdown();
}

#[test]
fn photos_from_the_camera_are_saved_sent_and_dropped() {
    // The replayed camera alternates a card filling the guide and a well-placed face, 1280x720 each.
    let frames = tempfile::tempdir().unwrap();
    capture_common::card_frame(true, 0.8, false).save(frames.path().join("a-card.png")).unwrap();
    capture_common::good_face().save(frames.path().join("b-face.png")).unwrap();
    let camera =
        CameraConfig { source: SourceSetting::Replay(frames.path().to_path_buf()), fps: 4, ..CameraConfig::default() };
    let (sb, client) = sandbox();
    let up_cfg = UploaderConfig::default();
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), up_cfg.retry_cap).unwrap();
    let uploader = Uploader::spawn(q.clone(), Box::new(client), &up_cfg).unwrap();
    let mailbox = Mailbox::new(|| {});
    let mut live =
        LiveServices::new(mailbox.clone(), camera, CaptureConfig::default(), EncodeConfig::default(), q.clone())
            .unwrap();
    assert!(!live.is_demo(), "a replayed camera and the real queue: nothing is DEMO");

    let mut seen = Vec::new();
    for (mode, target) in
        [(CameraMode::Document, CaptureTarget::DocumentFront), (CameraMode::Face, CaptureTarget::Face)]
    {
        live.start_camera(mode, 1);
        // Ask until the frame on screen is the right one and passes the checks.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut captured = false;
        while !captured && Instant::now() < deadline {
            live.capture(target, 1);
            let answered = wait_for(
                &mailbox,
                &mut seen,
                10,
                |e| matches!(e, Event::Captured { session: 1, target: t } | Event::CaptureRejected { session: 1, target: t, .. } if *t == target),
            );
            assert!(answered, "no answer to the {target:?} capture: {seen:?}");
            captured = matches!(seen.last(), Some(Event::Captured { .. }));
            if !captured {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        assert!(captured, "the {target:?} was never captured: {seen:?}");
    }
    live.stop_camera();

    let email = Email::parse("ana@example.com").unwrap();
    let phone = Phone::parse("+447946000043").unwrap();
    live.enqueue(1, email.clone(), phone.clone(), None);
    assert!(wait_for(&mailbox, &mut seen, 20, |e| matches!(e, Event::Saved { session: 1, .. })), "not saved: {seen:?}");
    let reference = seen
        .iter()
        .find_map(|e| match e {
            Event::Saved { reference, .. } => Some(reference.clone()),
            _ => None,
        })
        .unwrap();
    let result = wait_for(
        &mailbox,
        &mut seen,
        60,
        |e| matches!(e, Event::Accepted { reference: r } | Event::Rejected { reference: r, .. } if *r == reference),
    );
    assert!(result, "no result for {reference}: {seen:?}");
    assert!(
        matches!(seen.last(), Some(Event::Accepted { .. })),
        "the camera's photos were refused: {seen:?}; sandbox calls {:?}",
        sb.calls()
    );
    assert!(!sb.calls().is_empty());
    let items = live.queue_items().unwrap();
    assert_eq!((items[0].reference.as_str(), items[0].state.as_str()), (reference.as_str(), "done"));

    // The photos are kept after the save (a retry prompt sends the customer back for one photo only, and the next
    // save needs the others): the same session can save again, here with other contact details.
    seen.clear();
    live.enqueue(1, Email::parse("ana.retry@example.com").unwrap(), Phone::parse("+447946000044").unwrap(), None);
    assert!(wait_for(&mailbox, &mut seen, 20, |e| matches!(e, Event::Saved { session: 1, .. })), "{seen:?}");
    assert_eq!(live.queue_items().unwrap().len(), 2);
    // The wipe drops them: the same session has nothing left to save.
    live.wipe();
    live.enqueue(1, email, phone, None);
    assert!(wait_for(&mailbox, &mut seen, 20, |e| matches!(e, Event::SaveFailed { session: 1 })), "{seen:?}");
    assert_eq!(live.queue_items().unwrap().len(), 2);

    drop(live);
    uploader.shutdown();
    q.shutdown();
    sb.shutdown();
}
