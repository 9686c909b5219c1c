//! Auto-capture end to end: frames from a `FrameSource` go through the checks into `AutoCapture`; a sequence that
//! becomes sharp and centred is captured (its sharpest good frame) and encodes; one that never does is not.

mod capture_common;

use capture_common::*;
use ekyc_kiosk::camera::{CameraError, Frame, FrameSource};
use ekyc_kiosk::capture::{AutoCapture, CaptureConfig, CheckedCapture, Mode, QualityChecker};
use ekyc_kiosk::encode::{self, EncodeConfig, Origin};
use image::RgbImage;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Serves the given frames once, then times out.
struct TestSource {
    frames: VecDeque<RgbImage>,
    seq: u64,
}

impl FrameSource for TestSource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        let image = self.frames.pop_front().ok_or(CameraError::Timeout(timeout))?;
        self.seq += 1;
        Ok(Frame { image, seq: self.seq, captured_at: Instant::now() })
    }
    fn describe(&self) -> String {
        "test frames".into()
    }
}

/// Runs the capture loop until the source runs dry; returns the capture, if any, and the frame count seen.
fn run(frames: Vec<RgbImage>, needed: u32) -> (Option<CheckedCapture>, usize) {
    let mut src = TestSource { frames: frames.into(), seq: 0 };
    let mut q = QualityChecker::new(&CaptureConfig::default()).unwrap();
    let mut auto = AutoCapture::new(needed);
    let mut seen = 0;
    while let Ok(frame) = src.next_frame(Duration::from_millis(10)) {
        seen += 1;
        if let Some(c) = auto.push(q.assess(Mode::Face, frame.image)) {
            return (Some(c), seen);
        }
    }
    (None, seen)
}

#[test]
fn a_sequence_that_settles_is_captured_with_its_sharpest_frame() {
    let a = fixture("astronaut.png");
    let sharpest = face_frame(&a, 0.3, 10, 0);
    let frames = vec![
        blurred(&face_frame(&a, 0.3, 320, 40), 4.0), // arriving: off to the side and moving
        face_frame(&a, 0.3, 300, 20),                // still off centre
        blurred(&face_frame(&a, 0.3, 20, 0), 4.0),   // centred, still moving
        blurred(&face_frame(&a, 0.3, 0, 0), 0.9),    // good from here on
        sharpest.clone(),
        blurred(&face_frame(&a, 0.3, 5, 5), 1.0),
        good_face(), // not reached: three in a row suffice
    ];
    let (capture, seen) = run(frames, 3);
    let capture = capture.expect("captured");
    assert_eq!(seen, 6);
    assert!(capture.image() == &sharpest, "the sharpest of the good run is kept");
    let jpeg = encode::encode_checked(&capture, &EncodeConfig::default()).unwrap();
    assert_eq!(jpeg.origin(), Origin::CheckedCapture);
    assert_eq!((jpeg.width(), jpeg.height()), (W, H));
    image::load_from_memory(jpeg.bytes()).unwrap();
}

#[test]
fn a_sequence_that_never_settles_is_not_captured() {
    let a = fixture("astronaut.png");
    // Good frames, but never three in a row.
    let frames = vec![
        good_face(),
        good_face(),
        blurred(&good_face(), 4.0),
        good_face(),
        face_frame(&a, 0.3, 300, 0),
        good_face(),
        good_face(),
        two_faces(),
    ];
    let (capture, seen) = run(frames, 3);
    assert!(capture.is_none());
    assert_eq!(seen, 8);
}
