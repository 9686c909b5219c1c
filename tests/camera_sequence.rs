//! A replay sequence driving a capture loop end to end through the camera worker: a face that drifts in and comes
//! into focus is captured after N consecutive good frames; one that never gets centred and sharp is not. The
//! "good frame" rule here is a small stand-in (one frontal face near the centre, Laplacian variance on the face
//! above a threshold) until the capture module's auto-capture replaces it; the sequence, the worker and the
//! replay are the real ones, and `approach_sequence` is the helper for that test.

use ekyc_kiosk::camera::demo::{PORTRAIT_FACE_CENTRE, PORTRAIT_FACE_WIDTH};
use ekyc_kiosk::camera::replay::approach_sequence;
use ekyc_kiosk::camera::{CameraConfig, CameraError, CameraWorker, FrameSource, ReplaySource};
use ekyc_kiosk::capture::face::{DetectorSettings, FaceDetector};
use image::{GrayImage, RgbImage};
use std::path::Path;
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 240;
const CONSECUTIVE: usize = 3;

fn portrait() -> RgbImage {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/astronaut.png");
    let img = image::open(p).unwrap().into_rgb8();
    // Scaled so the face takes a third of the frame height, as at a kiosk.
    let side = (f64::from(H) / 3.0 / PORTRAIT_FACE_WIDTH) as u32;
    image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle)
}

fn laplacian_variance(g: &GrayImage, x0: u32, y0: u32, x1: u32, y1: u32) -> f64 {
    let mut vals = Vec::new();
    for y in y0.max(1)..y1.min(g.height() - 1) {
        for x in x0.max(1)..x1.min(g.width() - 1) {
            let p = |dx: i32, dy: i32| f64::from(g.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32).0[0]);
            vals.push(p(-1, 0) + p(1, 0) + p(0, -1) + p(0, 1) - 4.0 * p(0, 0));
        }
    }
    let n = vals.len().max(1) as f64;
    let mean = vals.iter().sum::<f64>() / n;
    vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
}

/// The stand-in check for one frame.
fn good(detector: &mut FaceDetector, frame: &RgbImage) -> bool {
    let gray = image::imageops::grayscale(frame);
    let faces = detector.detect(&gray);
    let [face] = faces.as_slice() else { return false };
    let (cx, cy) = face.center();
    let centred =
        (cx - f64::from(W) / 2.0).abs() < f64::from(W) * 0.08 && (cy - f64::from(H) / 2.0).abs() < f64::from(H) * 0.15;
    let (x0, y0) = (face.x.max(0) as u32, face.y.max(0) as u32);
    let sharp = laplacian_variance(&gray, x0, y0, x0 + face.width, y0 + face.height) > 40.0;
    centred && sharp
}

/// Runs the capture loop over the worker until a capture or the end of the replay; the capture's frame seq.
fn run(frames: Vec<RgbImage>) -> Option<u64> {
    let cfg = CameraConfig { open_timeout: Duration::from_secs(2), ..CameraConfig::default() };
    let worker = CameraWorker::spawn_with(
        &cfg,
        Box::new(move || Ok(Box::new(ReplaySource::from_images(frames, 30)?.looping(false)))),
    )
    .unwrap();
    let mut detector = FaceDetector::new(DetectorSettings::default()).unwrap();
    let mut tap = worker.tap();
    let mut streak = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let captured = loop {
        assert!(Instant::now() < deadline, "the replay did not end");
        match tap.next_frame(Duration::from_secs(2)) {
            Ok(f) => {
                streak = if good(&mut detector, &f.image) { streak + 1 } else { 0 };
                if streak == CONSECUTIVE {
                    break Some(f.seq);
                }
            }
            Err(CameraError::EndOfReplay) => break None,
            Err(e) => panic!("{e}"),
        }
    };
    worker.shutdown(Duration::from_secs(2)).unwrap();
    captured
}

#[test]
fn a_face_that_becomes_sharp_and_centred_is_captured_and_one_that_never_does_is_not() {
    let p = portrait();
    let becomes_good = approach_sequence(&p, PORTRAIT_FACE_CENTRE, W, H, 45, 1.0);
    let never_good = approach_sequence(&p, PORTRAIT_FACE_CENTRE, W, H, 45, 0.5);
    // The sequence itself: starts off-centre and blurred, ends centred and sharp.
    let mut detector = FaceDetector::new(DetectorSettings::default()).unwrap();
    assert!(!good(&mut detector, &becomes_good[0]));
    assert!(good(&mut detector, becomes_good.last().unwrap()));
    assert!(!good(&mut detector, never_good.last().unwrap()));

    let captured = run(becomes_good);
    assert!(captured.is_some(), "the approaching face is captured");
    assert_eq!(run(never_good), None, "a face that never settles is not captured");
}
