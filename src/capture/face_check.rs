//! The face (selfie) check: exactly one face, its size and position in the guide oval, and sharpness and exposure
//! measured on the face. Faces are searched on a downscaled grey copy (longest side `capture.detect_max_side`) so a
//! 720p frame is checked well within a 30 fps frame time on one core. Runs on the checker's thread.

use super::face::{FaceBox, FaceDetector};
use super::measure::{self, Rect};
use super::{CaptureConfig, Hint, Metrics, Mode, Verdict};
use image::RgbImage;

/// Sharpness, exposure and pose are measured on the face resampled to this square size, so the figures mean the
/// same whatever the distance to the camera.
const NORM_SIDE: u32 = 128;
/// Pose (mirror symmetry of the gradients) is judged on the face at this size: coarse enough to ignore skin
/// texture and noise, fine enough to see the eyes, nose and mouth.
const POSE_SIDE: u32 = 64;
/// The face crop is first area-averaged to at most this side (bounds the cost for a face filling the frame).
const CROP_MAX_SIDE: u32 = 384;

/// The fine pass searches this part of the frame (fractions of its width and height): the guide oval's middle
/// columns, where the head of a customer standing back in front of the kiosk is (the camera at eye height).
const FINE_REGION: (f64, f64, f64, f64) = (0.32, 0.10, 0.68, 0.66);
/// The fine pass searches the region at this share of its full resolution: rustface's 40 px window then finds faces
/// from 40 / 0.72 = 56 px, under 1/12 of a 720p frame's height (60 px).
const FINE_SCALE: f64 = 0.72;

/// Finds faces in `frame`, in frame pixels, largest first. Coarse to fine: the whole frame at the configured
/// detection size first (faces from about 1/6 of the frame height on a 720p frame, the size a customer at the
/// kiosk shows); only when that finds nothing, the guide's columns at a finer scale, so a customer standing back
/// (a face from 1/12 of the frame height) is found and told to come closer rather than to look at the camera. Both
/// passes together stay within a 30 fps frame time on one core (`benches/quality.rs`).
pub(crate) fn find_faces(detector: &mut FaceDetector, frame: &RgbImage, max_side: u32) -> Vec<FaceBox> {
    let (gray, factor) = measure::gray_downscaled(frame, max_side);
    let f = factor as i32;
    let coarse: Vec<FaceBox> = detector
        .detect(&gray)
        .into_iter()
        .map(|b| FaceBox { x: b.x * f, y: b.y * f, width: b.width * factor, height: b.height * factor, score: b.score })
        .collect();
    if !coarse.is_empty() || factor == 1 {
        return coarse;
    }
    find_small_faces(detector, frame)
}

/// The fine pass of [`find_faces`].
fn find_small_faces(detector: &mut FaceDetector, frame: &RgbImage) -> Vec<FaceBox> {
    let (w, h) = (f64::from(frame.width()), f64::from(frame.height()));
    let (x0, y0, x1, y1) = FINE_REGION;
    let region = Rect::from_f64(x0 * w, y0 * h, x1 * w, y1 * h, frame.width(), frame.height());
    let crop = measure::gray_region(frame, region, 1);
    let (sw, sh) = ((f64::from(crop.width()) * FINE_SCALE) as u32, (f64::from(crop.height()) * FINE_SCALE) as u32);
    if sw == 0 || sh == 0 {
        return Vec::new();
    }
    let scaled = measure::resize_gray(&crop, sw, sh);
    let back = |v: u32| (f64::from(v) / FINE_SCALE).round() as u32;
    detector
        .detect(&scaled)
        .into_iter()
        .map(|b| FaceBox {
            x: region.x as i32 + (f64::from(b.x) / FINE_SCALE).round() as i32,
            y: region.y as i32 + (f64::from(b.y) / FINE_SCALE).round() as i32,
            width: back(b.width),
            height: back(b.height),
            score: b.score,
        })
        .collect()
}

/// How far the mirror axis is searched either side of the detector box's centre, as a share of the box's width.
/// Measured (`tests/capture_checks.rs`, head_pose): wide enough for the demo portrait's box (3 % off the face's
/// midline: 0.21 at the centre, 0.34 at the best axis); at 12 % a profile photo found an axis at 0.23 and passed.
const POSE_AXIS_SEARCH: f64 = 0.05;
/// Axis positions tried across that range (odd: the box's own centre is one of them).
const POSE_AXIS_STEPS: u32 = 5;

/// The head-pose measure: the left-right mirror symmetry (-1..1) of the face's gradients, at the best mirror axis
/// near the detector box's centre. The detector's box is not always centred on the face's midline (a few pixels off
/// on a frontal face lowers the symmetry as much as a real turn would), so the axis is searched; a turned head stays
/// asymmetric wherever the axis is, because its near half is wider than its far half.
fn pose_symmetry(frame: &RgbImage, face: Rect) -> f64 {
    let (w, h) = frame.dimensions();
    let margin = f64::from(face.w) * POSE_AXIS_SEARCH;
    let wide = Rect::from_f64(
        f64::from(face.x) - margin,
        f64::from(face.y),
        f64::from(face.x + face.w) + margin,
        f64::from(face.y + face.h),
        w,
        h,
    );
    if wide.w < 4 || wide.h < 4 {
        return 0.0;
    }
    let crop = measure::gray_region(frame, wide, measure::factor_for(wide.w, wide.h, CROP_MAX_SIDE));
    // The wide crop at the pose scale: the face's own width becomes POSE_SIDE.
    let scale = f64::from(POSE_SIDE) / f64::from(face.w.max(1));
    let wide_w = ((f64::from(wide.w) * scale).round() as u32).max(POSE_SIDE);
    let grad = measure::gradient_magnitude(&measure::resize_gray(&crop, wide_w, POSE_SIDE));
    let slack = wide_w - POSE_SIDE;
    (0..POSE_AXIS_STEPS)
        .map(|i| {
            let x = (u64::from(slack) * u64::from(i) / u64::from(POSE_AXIS_STEPS - 1)) as u32;
            let window = image::imageops::crop_imm(&grad, x, 0, POSE_SIDE, POSE_SIDE).to_image();
            measure::mirror_symmetry(&window)
        })
        .fold(f64::MIN, f64::max)
}

/// Runs the face check.
pub(crate) fn check(detector: &mut FaceDetector, config: &CaptureConfig, frame: &RgbImage) -> Verdict {
    let c = &config.face;
    let (w, h) = frame.dimensions();
    let mut metrics = Metrics { width: w, height: h, ..Default::default() };
    let mut hints = Vec::new();
    if w == 0 || h == 0 {
        return Verdict::new(Mode::Face, metrics, vec![Hint::LookAtCamera]);
    }
    let faces = find_faces(detector, frame, config.detect_max_side);
    metrics.faces = faces.len();
    // The guide oval: centred, semi-axes from the configured shares.
    let (ox, oy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (ax, ay) = ((c.guide_width * w as f64 / 2.0).max(1.0), (c.guide_height * h as f64 / 2.0).max(1.0));

    let region = match faces.first() {
        Some(face) => {
            let (cx, cy) = face.center();
            let share = face.height as f64 / h as f64;
            let offset = (((cx - ox) / ax).powi(2) + ((cy - oy) / ay).powi(2)).sqrt();
            metrics.face_score = Some(face.score);
            metrics.face_share = Some(share);
            metrics.face_offset = Some(offset);
            if faces.len() > 1 {
                hints.push(Hint::OnlyOnePerson);
            } else {
                if share < c.min_face_share {
                    hints.push(Hint::MoveCloser);
                } else if share > c.max_face_share {
                    hints.push(Hint::MoveBack);
                }
                if offset > c.max_offset {
                    hints.push(Hint::CentreFace);
                }
            }
            let (x0, y0) = (face.x as f64, face.y as f64);
            Rect::from_f64(x0, y0, x0 + face.width as f64, y0 + face.height as f64, w, h)
        }
        None => {
            hints.push(Hint::LookAtCamera);
            // No face: measure the guide oval's box, so a dark or blinding scene still says why.
            Rect::from_f64(ox - ax, oy - ay, ox + ax, oy + ay, w, h)
        }
    };

    let crop = measure::gray_region(frame, region, measure::factor_for(region.w, region.h, CROP_MAX_SIDE));
    let norm = measure::resize_gray(&crop, NORM_SIDE, NORM_SIDE);
    let sharpness = measure::laplacian_variance(&norm);
    let exp = measure::exposure(&norm);
    metrics.sharpness = Some(sharpness);
    metrics.brightness = Some(exp.mean);
    metrics.clipped_high = Some(exp.clipped_high);
    metrics.clipped_low = Some(exp.clipped_low);
    if !faces.is_empty() {
        let symmetry = pose_symmetry(frame, region);
        metrics.face_symmetry = Some(symmetry);
        if faces.len() == 1 && symmetry < c.min_symmetry {
            hints.push(Hint::LookAtCamera);
        }
        // Blur is only judged on a face: an empty scene has no detail to measure.
        if sharpness < c.min_sharpness {
            hints.push(Hint::HoldStill);
        }
    }
    if exp.mean < c.min_brightness {
        hints.push(Hint::MoreLight);
    } else if exp.mean > c.max_brightness || exp.clipped_high > c.max_clipped {
        hints.push(Hint::TooBright);
    }
    Verdict::new(Mode::Face, metrics, hints)
}
