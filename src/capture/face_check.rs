//! The face (selfie) check: exactly one face, its size and position in the guide oval, and sharpness and exposure
//! measured on the face. Faces are searched on a downscaled grey copy (longest side `capture.detect_max_side`) so a
//! 720p frame is checked well within a 30 fps frame time on one core. Runs on the checker's thread.

use super::face::{FaceBox, FaceDetector};
use super::measure::{self, Rect};
use super::{CaptureConfig, Hint, Metrics, Mode, Verdict};
use image::RgbImage;

/// Sharpness and exposure are measured on the face downscaled (by an integer factor) to at most this side, so the
/// figure means about the same whatever the distance.
const MEASURE_MAX_SIDE: u32 = 256;

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

    let gray = measure::gray_region(frame, region, measure::factor_for(region.w, region.h, MEASURE_MAX_SIDE));
    let sharpness = measure::laplacian_variance(&gray);
    let exp = measure::exposure(&gray);
    metrics.sharpness = Some(sharpness);
    metrics.brightness = Some(exp.mean);
    metrics.clipped_high = Some(exp.clipped_high);
    metrics.clipped_low = Some(exp.clipped_low);
    if exp.mean < c.min_brightness {
        hints.push(Hint::MoreLight);
    } else if exp.mean > c.max_brightness || exp.clipped_high > c.max_clipped {
        hints.push(Hint::TooBright);
    }
    // Blur is only judged on a face: a dark or empty scene has no detail to measure.
    if !faces.is_empty() && sharpness < c.min_sharpness {
        hints.push(Hint::HoldStill);
    }
    Verdict::new(Mode::Face, metrics, hints)
}
