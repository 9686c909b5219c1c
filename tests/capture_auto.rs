//! Auto-capture end to end: frames from the replay source (`ReplaySource::from_images`) go through the checks into `AutoCapture`; a sequence that
//! becomes sharp and centred is captured (its sharpest good frame) and encodes; one that never does is not.

mod capture_common;

use capture_common::*;
use ekyc_kiosk::camera::{FrameSource, ReplaySource};
use ekyc_kiosk::capture::{AutoCapture, CaptureConfig, CheckedCapture, Mode, QualityChecker};
use ekyc_kiosk::encode::{self, EncodeConfig, Origin};
use image::RgbImage;
use std::time::Duration;

/// Runs the capture loop over one pass of `frames` served by the replay source (it loops; one pass is enough);
/// returns the capture, if any, and the number of frames seen.
fn run(frames: Vec<RgbImage>, needed: u32) -> (Option<CheckedCapture>, usize) {
    let n = frames.len();
    let mut src = ReplaySource::from_images(frames, 200).unwrap();
    let mut q = QualityChecker::new(&CaptureConfig::default()).unwrap();
    let mut auto = AutoCapture::new(needed);
    for seen in 1..=n {
        let frame = src.next_frame(Duration::from_secs(5)).unwrap();
        assert_eq!(frame.seq, seen as u64);
        if let Some(c) = auto.push(q.assess(Mode::Face, frame.image)) {
            return (Some(c), seen);
        }
    }
    (None, n)
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
