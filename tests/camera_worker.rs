//! The camera worker: latest frame only, events, shutdown within its deadline; the demo fallback; a missing device
//! fails cleanly within its deadline. No camera exists in CI, so device tests cover what works without one.

use ekyc_kiosk::camera::{
    CameraConfig, CameraError, CameraEvent, CameraWorker, Frame, FrameSource, ReplaySource, SourceSetting,
};
use image::{Rgb, RgbImage};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(3);

fn quick_config() -> CameraConfig {
    CameraConfig {
        width: 320,
        height: 240,
        fps: 60,
        open_timeout: Duration::from_secs(2),
        frame_timeout: Duration::from_millis(300),
        ..CameraConfig::default()
    }
}

/// Distinct frames: frame i is filled with value i.
fn numbered(n: u8) -> Vec<RgbImage> {
    (0..n).map(|i| RgbImage::from_pixel(4, 4, Rgb([i, i, i]))).collect()
}

#[test]
fn the_worker_keeps_only_the_latest_frame() {
    let cfg = quick_config();
    let worker =
        CameraWorker::spawn_with(&cfg, Box::new(|| Ok(Box::new(ReplaySource::from_images(numbered(250), 400)?))))
            .unwrap();
    assert!(!worker.is_demo());
    assert!(matches!(worker.wait_event(WAIT), Some(CameraEvent::Opened { demo: false, .. })));
    let mut tap = worker.tap();
    let first = tap.next_frame(WAIT).unwrap();
    // Fall behind: the worker goes on replacing the frame in its slot instead of queueing.
    std::thread::sleep(Duration::from_millis(200));
    let newest = tap.next_frame(WAIT).unwrap();
    assert!(newest.seq > first.seq + 10, "frames were skipped, not queued: {} -> {}", first.seq, newest.seq);
    assert!(tap.replaced() > 10, "replaced {}", tap.replaced());
    // What the tap returned is the newest: the next one follows it directly in time.
    let next = tap.next_frame(WAIT).unwrap();
    assert!(next.seq > newest.seq && next.seq <= newest.seq + 3, "{} then {}", newest.seq, next.seq);
    let t = Instant::now();
    worker.shutdown(Duration::from_secs(1)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[test]
fn taps_on_other_threads_share_the_frames() {
    let worker = CameraWorker::spawn_with(
        &quick_config(),
        Box::new(|| Ok(Box::new(ReplaySource::from_images(numbered(5), 200)?))),
    )
    .unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut tap = worker.tap();
            std::thread::spawn(move || (0..5).map(|_| tap.next_frame(WAIT).unwrap().seq).collect::<Vec<u64>>())
        })
        .collect();
    for h in handles {
        let seqs = h.join().unwrap();
        assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
    }
    worker.shutdown(Duration::from_secs(1)).unwrap();
}

#[test]
fn the_end_of_a_replay_reaches_consumers() {
    let worker = CameraWorker::spawn_with(
        &quick_config(),
        Box::new(|| Ok(Box::new(ReplaySource::from_images(numbered(3), 500)?.looping(false)))),
    )
    .unwrap();
    let mut tap = worker.tap();
    let t = Instant::now();
    loop {
        match tap.next_frame(WAIT) {
            Ok(_) => continue,
            Err(CameraError::EndOfReplay) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(t.elapsed() < WAIT);
    worker.shutdown(Duration::from_secs(1)).unwrap();
}

/// A scripted source: frames, then silence (a stalled camera), then frames again, with some corrupt ones.
struct Flaky {
    n: u64,
    dropped: u64,
}

impl FrameSource for Flaky {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        self.n += 1;
        std::thread::sleep(Duration::from_millis(10));
        if (5..15).contains(&self.n) {
            self.dropped += 1;
            std::thread::sleep(timeout.saturating_sub(Duration::from_millis(10)));
            return Err(CameraError::Timeout(timeout));
        }
        Ok(Frame { image: RgbImage::new(2, 2), seq: self.n, captured_at: Instant::now() })
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
    fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[test]
fn a_stall_is_reported_as_disconnect_then_reopen_with_drops_counted() {
    let worker =
        CameraWorker::spawn_with(&quick_config(), Box::new(|| Ok(Box::new(Flaky { n: 0, dropped: 0 })))).unwrap();
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !seen.iter().any(|e| matches!(e, CameraEvent::Reopened { .. })) {
        if let Some(e) = worker.wait_event(Duration::from_millis(100)) {
            seen.push(e);
        }
    }
    let pos = |f: fn(&CameraEvent) -> bool| seen.iter().position(f);
    let opened = pos(|e| matches!(e, CameraEvent::Opened { .. })).expect("opened");
    let lost = pos(|e| matches!(e, CameraEvent::Disconnected { .. })).expect("disconnected");
    let back = pos(|e| matches!(e, CameraEvent::Reopened { .. })).expect("reopened");
    assert!(opened < lost && lost < back, "{seen:?}");
    assert_eq!(seen.iter().filter(|e| matches!(e, CameraEvent::Disconnected { .. })).count(), 1, "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e, CameraEvent::FramesDropped { count } if *count > 0)), "{seen:?}");
    worker.shutdown(Duration::from_secs(2)).unwrap();
}

/// A source stuck inside a driver call that ignores its timeout.
struct Stuck;

impl FrameSource for Stuck {
    fn next_frame(&mut self, _timeout: Duration) -> Result<Frame, CameraError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(CameraError::Timeout(Duration::from_secs(3)))
    }
    fn describe(&self) -> String {
        "stuck".into()
    }
}

#[test]
fn shutdown_returns_within_its_deadline_even_when_the_source_is_stuck() {
    let worker = CameraWorker::spawn_with(&quick_config(), Box::new(|| Ok(Box::new(Stuck)))).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let r = worker.shutdown(Duration::from_millis(300));
    assert!(matches!(r, Err(CameraError::ShutdownTimeout(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_millis(800), "{:?}", t.elapsed());
}

#[test]
fn a_source_that_cannot_open_is_an_error_from_spawn() {
    let t = Instant::now();
    let r = CameraWorker::spawn_with(&quick_config(), Box::new(|| Err(CameraError::NoDevice("none here".into()))));
    assert!(matches!(r, Err(CameraError::NoDevice(_))));
    let r = CameraWorker::spawn_with(
        &CameraConfig { open_timeout: Duration::from_millis(100), ..quick_config() },
        Box::new(|| {
            std::thread::sleep(Duration::from_secs(2));
            Err(CameraError::NoDevice("late".into()))
        }),
    );
    assert!(matches!(r, Err(CameraError::OpenTimeout(_))));
    assert!(t.elapsed() < Duration::from_millis(1500));
    // A source that panics while opening is an error, not a hang.
    let r = CameraWorker::spawn_with(&quick_config(), Box::new(|| panic!("driver bug")));
    assert!(matches!(r, Err(CameraError::Thread(_))));
}

#[test]
fn demo_fallback_when_no_camera_exists() {
    let devices = ekyc_kiosk::camera::device::list_devices().unwrap_or_default();
    if !devices.is_empty() {
        eprintln!("skipped: this machine has cameras: {devices:?}");
        return;
    }
    // In demo mode (`demo_fallback`, set by the run mode) `auto` falls back to the demo; `demo` always is.
    for source in [SourceSetting::Auto, SourceSetting::Demo] {
        let cfg = CameraConfig { source: source.clone(), demo_fallback: true, ..quick_config() };
        let worker = CameraWorker::spawn(&cfg).unwrap();
        assert!(worker.is_demo(), "{source:?}");
        assert!(worker.describe().contains("DEMO"));
        assert!(matches!(worker.wait_event(WAIT), Some(CameraEvent::Opened { demo: true, .. })));
        let mut tap = worker.tap();
        let f = tap.next_frame(WAIT).unwrap();
        assert_eq!(f.image.dimensions(), (320, 240));
        worker.shutdown(Duration::from_secs(2)).unwrap();
    }
    // `device` does not fall back: no camera is an error.
    let cfg = CameraConfig { source: SourceSetting::Device, demo_fallback: true, ..quick_config() };
    assert!(CameraWorker::spawn(&cfg).is_err());
    // Outside demo mode `auto` does not either: the camera is unavailable, never sample pictures.
    let cfg = CameraConfig { source: SourceSetting::Auto, demo_fallback: false, ..quick_config() };
    assert!(matches!(CameraWorker::spawn(&cfg), Err(CameraError::NoDevice(_))));
}

#[test]
fn a_replay_configured_by_path_runs_in_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.png");
    RgbImage::from_pixel(32, 16, Rgb([10, 200, 30])).save(&p).unwrap();
    let cfg = CameraConfig { source: SourceSetting::Replay(p.clone()), ..quick_config() };
    let mut worker = CameraWorker::spawn(&cfg).unwrap();
    assert!(worker.describe().contains("f.png"));
    let f = worker.next_frame(WAIT).unwrap();
    assert_eq!(f.image.get_pixel(3, 3).0, [10, 200, 30]);
    worker.shutdown(Duration::from_secs(1)).unwrap();
    let missing = CameraConfig { source: SourceSetting::Replay(dir.path().join("nope")), ..quick_config() };
    assert!(matches!(CameraWorker::spawn(&missing), Err(CameraError::Replay { .. })));
}

#[test]
fn listing_cameras_without_any_is_empty_not_an_error() {
    match ekyc_kiosk::camera::device::list_devices() {
        Ok(list) => assert!(list.iter().all(|d| d.path.to_string_lossy().starts_with("/dev/video"))),
        Err(CameraError::Unsupported) => {}
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_missing_device_fails_cleanly_within_the_open_deadline() {
    let cfg = CameraConfig {
        source: SourceSetting::Device,
        device: "/dev/video63".into(),
        open_timeout: Duration::from_secs(2),
        ..quick_config()
    };
    let t = Instant::now();
    let r = ekyc_kiosk::camera::device::open(&cfg);
    assert!(r.is_err());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let r = CameraWorker::spawn(&cfg);
    assert!(r.is_err());
    assert!(t.elapsed() < Duration::from_secs(6));
}
