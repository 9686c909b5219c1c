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

/// Finds faces in `frame`, in frame pixels, largest first.
pub(crate) fn find_faces(detector: &mut FaceDetector, frame: &RgbImage, max_side: u32) -> Vec<FaceBox> {
    let (gray, factor) = measure::gray_downscaled(frame, max_side);
    let f = factor as i32;
    detector
        .detect(&gray)
        .into_iter()
        .map(|b| FaceBox { x: b.x * f, y: b.y * f, width: b.width * factor, height: b.height * factor, score: b.score })
        .collect()
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
        let pose = measure::resize_gray(&norm, POSE_SIDE, POSE_SIDE);
        let symmetry = measure::mirror_symmetry(&measure::gradient_magnitude(&pose));
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
