//! The ID document check: the card fills the guide rectangle, it is sharp, free of glare and lit, and the front
//! carries a portrait. The card is found as the strongest straight borders around the guide: the signed gradient
//! summed along each column and row (a border with the same contrast along its length adds up, printed text and
//! texture cancel out), searched on a downscaled grey copy. Runs on the checker's thread.

use super::face::FaceDetector;
use super::measure::{self, Rect};
use super::{CaptureConfig, Hint, Metrics, Mode, Verdict};
use image::{GrayImage, RgbImage};

/// ID-1 card shape (85.60 x 53.98 mm).
const CARD_ASPECT: f64 = 85.60 / 53.98;
/// The guide rectangle never exceeds this share of the frame height.
const GUIDE_MAX_HEIGHT: f64 = 0.9;
/// The borders are searched this far outside the guide (share of the guide's size, each side).
const SEARCH_MARGIN: f64 = 0.12;
/// Each border is searched in the outer part of the search region, this share of its size from the edge.
const BORDER_BAND: f64 = 0.42;
/// Smallest mean luma step across a border (summed-gradient profile) for it to count.
const MIN_BORDER_STEP: f64 = 6.0;
/// A border must stand out of its profile's median by this factor.
const MIN_BORDER_PROMINENCE: f64 = 3.0;
/// Card shapes accepted (width / height), loose for tilt and perspective.
const ASPECT_RANGE: std::ops::RangeInclusive<f64> = 1.2..=2.1;
/// Sharpness and glare are measured on the card downscaled to at most this side.
const MEASURE_MAX_SIDE: u32 = 640;
/// The portrait is searched on the card downscaled to at most this side.
const PORTRAIT_MAX_SIDE: u32 = 480;
/// Edge detection runs on the frame downscaled to at most this side.
const EDGE_MAX_SIDE: u32 = 480;

/// The guide rectangle of a `w` x `h` frame.
pub(crate) fn guide(w: u32, h: u32, guide_width: f64) -> Rect {
    let mut gw = guide_width * w as f64;
    let mut gh = gw / CARD_ASPECT;
    if gh > GUIDE_MAX_HEIGHT * h as f64 {
        gh = GUIDE_MAX_HEIGHT * h as f64;
        gw = gh * CARD_ASPECT;
    }
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    Rect::from_f64(cx - gw / 2.0, cy - gh / 2.0, cx + gw / 2.0, cy + gh / 2.0, w, h)
}

/// The strongest border position in `profile[range]`, if it is strong and prominent enough.
fn border(profile: &[f64], range: std::ops::Range<usize>, median: f64) -> Option<usize> {
    let best = range.filter(|&i| i < profile.len()).max_by(|&a, &b| profile[a].total_cmp(&profile[b]))?;
    let v = profile[best];
    (v >= MIN_BORDER_STEP && v >= MIN_BORDER_PROMINENCE * median).then_some(best)
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// An image of about the card's own shape (a scan or a photo cropped to the card) is taken as the card itself.
/// Camera frames (16:9, 4:3) are never this shape.
const CROPPED_CARD_ASPECT: std::ops::RangeInclusive<f64> = (CARD_ASPECT * 0.92)..=(CARD_ASPECT * 1.08);

/// Finds the card's box (frame pixels) around the guide: four borders forming a card's shape, or the whole image
/// when it has the card's shape itself (a scan or a cropped photo).
pub(crate) fn find_card(frame: &RgbImage, guide: Rect) -> Option<Rect> {
    let aspect = frame.width() as f64 / frame.height().max(1) as f64;
    if CROPPED_CARD_ASPECT.contains(&aspect) {
        // Borders found inside such an image are the card's own printing, not its edges.
        return Some(Rect { x: 0, y: 0, w: frame.width(), h: frame.height() });
    }
    find_borders(frame, guide)
}

/// Four borders around the guide forming a card's shape.
fn find_borders(frame: &RgbImage, guide: Rect) -> Option<Rect> {
    let (gray, f): (GrayImage, u32) = measure::gray_downscaled(frame, EDGE_MAX_SIDE);
    let (gw, gh) = (gray.width(), gray.height());
    let ff = f as f64;
    let g = |v: u32| v as f64 / ff;
    let (mx, my) = (SEARCH_MARGIN * g(guide.w), SEARCH_MARGIN * g(guide.h));
    let search =
        Rect::from_f64(g(guide.x) - mx, g(guide.y) - my, g(guide.x + guide.w) + mx, g(guide.y + guide.h) + my, gw, gh);
    if search.w < 8 || search.h < 8 {
        return None;
    }
    let cols = measure::column_edge_profile(&gray, search);
    let rows = measure::row_edge_profile(&gray, search);
    let (cm, rm) = (median(&cols), median(&rows));
    let band = |n: usize| ((n as f64 * BORDER_BAND) as usize).max(1);
    let (bw, bh) = (band(cols.len()), band(rows.len()));
    let left = border(&cols, 1..bw, cm)?;
    let right = border(&cols, cols.len() - bw..cols.len() - 1, cm)?;
    let top = border(&rows, 1..bh, rm)?;
    let bottom = border(&rows, rows.len() - bh..rows.len() - 1, rm)?;
    let to_frame = |v: usize, o: u32| (v as f64 + o as f64 + 0.5) * ff;
    let card = Rect::from_f64(
        to_frame(left, search.x),
        to_frame(top, search.y),
        to_frame(right, search.x),
        to_frame(bottom, search.y),
        frame.width(),
        frame.height(),
    );
    let aspect = card.w as f64 / card.h.max(1) as f64;
    ASPECT_RANGE.contains(&aspect).then_some(card)
}

/// Runs the document check for the front or the back.
pub(crate) fn check(detector: &mut FaceDetector, config: &CaptureConfig, mode: Mode, frame: &RgbImage) -> Verdict {
    let c = &config.document;
    let (w, h) = frame.dimensions();
    let mut metrics = Metrics { width: w, height: h, ..Default::default() };
    if w < 16 || h < 16 {
        return Verdict::new(mode, metrics, vec![Hint::FillFrameWithCard]);
    }
    let mut hints = Vec::new();
    let guide = guide(w, h, c.guide_width);
    let card = find_card(frame, guide);
    let fill = card.map_or(0.0, |r| r.intersect(&guide).area() as f64 / guide.area().max(1) as f64);
    metrics.card_fill = Some(fill);
    if fill < c.min_fill {
        hints.push(Hint::FillFrameWithCard);
    }
    let region = card.unwrap_or(guide);
    let gray = measure::gray_region(frame, region, measure::factor_for(region.w, region.h, MEASURE_MAX_SIDE));
    let sharpness = measure::laplacian_variance(&gray);
    let exp = measure::exposure(&gray);
    metrics.sharpness = Some(sharpness);
    metrics.brightness = Some(exp.mean);
    metrics.clipped_high = Some(exp.clipped_high);
    metrics.clipped_low = Some(exp.clipped_low);
    if sharpness < c.min_sharpness {
        hints.push(Hint::HoldStill);
    }
    if exp.clipped_high > c.max_glare {
        hints.push(Hint::AvoidGlare);
    }
    if exp.mean < c.min_brightness {
        hints.push(Hint::MoreLight);
    }
    if mode == Mode::DocumentFront && c.require_portrait {
        let portrait = measure::gray_region(frame, region, measure::factor_for(region.w, region.h, PORTRAIT_MAX_SIDE));
        let faces = detector.detect(&portrait);
        metrics.faces = faces.len();
        if let Some(face) = faces.first() {
            metrics.face_score = Some(face.score);
        }
        if faces.is_empty() {
            hints.push(Hint::ShowPhotoSide);
        }
    }
    Verdict::new(mode, metrics, hints)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn card_frame(x: u32, y: u32, cw: u32) -> RgbImage {
        let ch = (cw as f64 / CARD_ASPECT) as u32;
        let mut s = 7u32;
        RgbImage::from_fn(1280, 720, |px, py| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (s >> 16) % 30;
            if (x..x + cw).contains(&px) && (y..y + ch).contains(&py) {
                // Card with "text" lines.
                let line = (py - y) % 24 < 4 && (px - x) % 40 < 30 && px - x > cw / 3;
                if line { Rgb([40, 40, 60]) } else { Rgb([215, 210, 200]) }
            } else {
                Rgb([70 + n as u8, 60 + n as u8, 50 + n as u8])
            }
        })
    }

    #[test]
    fn guide_keeps_the_card_shape_and_fits_the_frame() {
        let g = guide(1280, 720, 0.85);
        assert!(((g.w as f64 / g.h as f64) - CARD_ASPECT).abs() < 0.02, "{g:?}");
        let tall = guide(1280, 400, 1.0);
        assert!(tall.h <= 360 && tall.w < 1280, "{tall:?}");
    }

    #[test]
    fn finds_a_card_where_it_is_and_nothing_on_texture() {
        let g = guide(1280, 720, 0.85);
        let frame = card_frame(g.x + 10, g.y + 8, g.w - 20);
        let card = find_card(&frame, g).expect("card found");
        assert!(card.x.abs_diff(g.x + 10) <= 4 && card.w.abs_diff(g.w - 20) <= 8, "{card:?} in {g:?}");
        let fill = card.area() as f64 / g.area() as f64;
        assert!(fill > 0.85, "{fill}");
        let small = card_frame(500, 300, 300);
        let found = find_card(&small, g);
        assert!(found.is_none_or(|r| (r.area() as f64 / g.area() as f64) < 0.3), "{found:?}");
        let noise = card_frame(2000, 2000, 10);
        assert_eq!(find_card(&noise, g), None);
        // A scan cropped to the card: the whole image is the card.
        let scan = image::imageops::crop_imm(&frame, g.x + 10, g.y + 8, g.w - 20, g.h - 16).to_image();
        let whole = Rect { x: 0, y: 0, w: scan.width(), h: scan.height() };
        let sg = guide(scan.width(), scan.height(), 0.85);
        assert!(find_card(&scan, sg).is_some_and(|r| r.area() as f64 >= 0.9 * whole.area() as f64));
    }
}
