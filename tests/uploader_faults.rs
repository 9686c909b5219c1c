//! The uploader against the sandbox through a TCP fault proxy (latency, bandwidth limit, reset after N bytes,
//! blackhole, flapping) and the sandbox's own faults (503 with Retry-After, dropped after the body): once the faults
//! stop, the queue drains fully, nothing is lost, and no step made more attempts than the backoff allows.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::queue::{Backoff, Event, NewEnrollment, QueueConfig, QueueHandle, State};
use ekyc_kiosk::sandbox::{FaultAction, FaultRule, Sandbox, SandboxConfig, SandboxEndpoint, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use ekyc_kiosk::uploader::{Uploader, UploaderConfig, wait_drained};
use fault_proxy::{FaultProxy, Mode};
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "fault-test-key";

fn demo(name: &str) -> UploadJpeg {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name)).unwrap();
    UploadJpeg::from_operator_bytes(&bytes, &EncodeConfig::default()).unwrap()
}

/// The most attempts a step can make in `elapsed` when every gap is at least the backoff's lower bound.
fn max_attempts(b: &Backoff, elapsed: Duration) -> u32 {
    let mut t = Duration::ZERO;
    let mut n = 1;
    while t <= elapsed {
        t += b.bounds(n).0;
        n += 1;
    }
    n
}

#[test]
fn after_network_and_server_faults_the_queue_drains_fully() {
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let proxy = FaultProxy::start(sb.addr());
    let api_cfg = ApiConfig {
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(2),
        upload_timeout: Duration::from_secs(4),
        request_timeout: Duration::from_secs(2),
        ..ApiConfig::default()
    };
    let client =
        ApiClient::new(&api_cfg, &FaceMatchConfig::default(), proxy.url().parse().unwrap(), ApiKey::new(KEY)).unwrap();
    let up_cfg = UploaderConfig {
        retry_base: Duration::from_millis(100),
        retry_cap: Duration::from_secs(1),
        retry_burst: 20,
        retry_refill: Duration::from_millis(50),
        key_probe_interval: Duration::from_secs(1),
    };
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), up_cfg.retry_cap).unwrap();
    let events = q.subscribe().unwrap();
    let (front, back, face) = (demo("id-front.jpg"), demo("id-back.jpg"), demo("face.jpg"));

    // Faults on from the start; applications keep coming while they last.
    let start = Instant::now();
    let uploader = Uploader::spawn(q.clone(), Box::new(client), &up_cfg).unwrap();
    let schedule: &[(Mode, u64)] = &[
        (Mode::Latency(Duration::from_millis(300)), 1500),
        (Mode::Bandwidth(150_000), 2000),
        (Mode::ResetAfter(40_000), 1500),
        (Mode::Blackhole, 2500),
        (Mode::Flap { up: Duration::from_millis(300), down: Duration::from_millis(400) }, 2500),
    ];
    let mut saved = Vec::new();
    for (i, &(mode, ms)) in schedule.iter().enumerate() {
        proxy.set(mode);
        for j in 0..2 {
            let n = i * 2 + j;
            let e = q
                .enqueue(NewEnrollment {
                    email: Email::parse(&format!("fault{n}@example.com")).unwrap(),
                    phone: Phone::parse(&format!("+447946{n:05}")).unwrap(),
                    front: front.clone(),
                    back: Some(back.clone()),
                    side: None,
                    face: face.clone(),
                })
                .unwrap();
            saved.push(e);
        }
        std::thread::sleep(Duration::from_millis(ms));
    }
    // Then the sandbox misbehaves behind a healthy network: 503s with Retry-After, and answers lost after the body.
    proxy.set(Mode::Pass);
    let faults = sb.faults();
    faults
        .add(FaultRule { endpoint: None, times: Some(4), action: FaultAction::Unavailable { retry_after: Some(1) } })
        .unwrap();
    faults
        .add(FaultRule {
            endpoint: Some(SandboxEndpoint::CreateRequest),
            times: Some(3),
            action: FaultAction::DropAfterBody,
        })
        .unwrap();
    faults
        .add(FaultRule { endpoint: Some(SandboxEndpoint::Face), times: Some(2), action: FaultAction::DropAfterBody })
        .unwrap();
    let fault_end = start.elapsed();

    let drained = wait_drained(&q, Instant::now() + Duration::from_secs(90)).unwrap();
    let elapsed = start.elapsed();
    uploader.shutdown();
    assert!(drained.drained, "{} application(s) still to send after the faults stopped", drained.remaining);

    // Nothing lost: every saved application is done at the server.
    let mut done = 0;
    for e in &saved {
        let d = q.show(&e.reference).unwrap();
        assert_eq!(d.summary.state, State::Done, "{}: {:?}", e.reference, d.steps);
        assert!(d.summary.face_score.is_some());
        done += 1;
        // Attempts within the backoff's bounds.
        let limit = max_attempts(&up_cfg.backoff(), elapsed);
        for s in &d.steps {
            assert!(
                s.attempts >= 1 && s.attempts <= limit,
                "{} {:?}: {} attempts > {limit}",
                e.reference,
                s.kind,
                s.attempts
            );
        }
    }
    assert_eq!(done, saved.len());
    let seen_done = events.try_iter().filter(|e| matches!(e, Event::Done { .. })).count();
    assert_eq!(seen_done, saved.len());
    let status = q.status().unwrap();
    assert!(status.ambiguous_sends >= 5, "the dropped answers were counted: {}", status.ambiguous_sends);
    assert!(proxy.resets() > 0, "the proxy reset connections");
    println!(
        "faults for {fault_end:?}, drained after {elapsed:?}; {} ambiguous sends, {} proxy resets",
        status.ambiguous_sends,
        proxy.resets()
    );
    q.shutdown();
}
