//! Pixel measurements shared by the face and document checks: area-averaged grey downscaling, the variance of the
//! Laplacian (sharpness), exposure statistics and the signed-gradient edge profiles used to find a card. Pure
//! functions over borrowed pixels; they run on whichever thread runs the checks (the capture thread in the kiosk).

use image::{GrayImage, RgbImage};

/// A rectangle in pixels (left, top, width, height), clamped to an image by [`Rect::clamp_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    /// A rectangle from possibly out-of-range float edges, clamped to a `width` x `height` image.
    pub fn from_f64(x0: f64, y0: f64, x1: f64, y1: f64, width: u32, height: u32) -> Rect {
        let cx = |v: f64| v.round().clamp(0.0, width as f64) as u32;
        let cy = |v: f64| v.round().clamp(0.0, height as f64) as u32;
        let (l, r) = (cx(x0.min(x1)), cx(x0.max(x1)));
        let (t, b) = (cy(y0.min(y1)), cy(y0.max(y1)));
        Rect { x: l, y: t, w: r - l, h: b - t }
    }

    /// Area in pixels.
    pub fn area(&self) -> u64 {
        self.w as u64 * self.h as u64
    }

    /// The overlap of two rectangles (empty when they do not meet).
    pub fn intersect(&self, o: &Rect) -> Rect {
        let (x0, y0) = (self.x.max(o.x), self.y.max(o.y));
        let (x1, y1) = ((self.x + self.w).min(o.x + o.w), (self.y + self.h).min(o.y + o.h));
        Rect { x: x0, y: y0, w: x1.saturating_sub(x0), h: y1.saturating_sub(y0) }
    }
}

/// ITU-R BT.601 luma of one RGB pixel, in 0..=255 (integer weights summing to 256).
#[inline]
fn luma(p: &[u8]) -> u32 {
    (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8
}

/// Grey copy of `region` of `rgb`, area-averaged down by an integer `factor` (1 = full resolution).
pub(crate) fn gray_region(rgb: &RgbImage, region: Rect, factor: u32) -> GrayImage {
    let f = factor.max(1);
    let (ow, oh) = (region.w / f, region.h / f);
    let mut out = GrayImage::new(ow, oh);
    if ow == 0 || oh == 0 {
        return out;
    }
    let stride = rgb.width() as usize * 3;
    let raw = rgb.as_raw();
    let mut acc = vec![0u32; ow as usize];
    let out_raw: &mut [u8] = &mut out;
    let div = f * f;
    for oy in 0..oh as usize {
        acc.iter_mut().for_each(|a| *a = 0);
        for dy in 0..f as usize {
            let y = region.y as usize + oy * f as usize + dy;
            let row = &raw[y * stride + region.x as usize * 3..][..ow as usize * f as usize * 3];
            for (ox, a) in acc.iter_mut().enumerate() {
                let px = &row[ox * f as usize * 3..][..f as usize * 3];
                *a += px.chunks_exact(3).map(luma).sum::<u32>();
            }
        }
        let dst = &mut out_raw[oy * ow as usize..][..ow as usize];
        for (d, a) in dst.iter_mut().zip(&acc) {
            *d = (a / div) as u8;
        }
    }
    out
}

/// Grey copy of the whole frame whose longest side is at most `max_side`, and the factor used (integer, so boxes
/// map back exactly: original = downscaled * factor).
pub(crate) fn gray_downscaled(rgb: &RgbImage, max_side: u32) -> (GrayImage, u32) {
    let longest = rgb.width().max(rgb.height()).max(1);
    let factor = longest.div_ceil(max_side.max(1)).max(1);
    let full = Rect { x: 0, y: 0, w: rgb.width(), h: rgb.height() };
    (gray_region(rgb, full, factor), factor)
}

/// The integer factor that brings the longest side of a `w` x `h` region to at most `max_side`.
pub(crate) fn factor_for(w: u32, h: u32, max_side: u32) -> u32 {
    w.max(h).div_ceil(max_side.max(1)).max(1)
}

/// `g` resampled to exactly `w` x `h` (triangle filter; through `DynamicImage`, whose resize is compiled once,
/// optimised, inside `image`).
pub(crate) fn resize_gray(g: &GrayImage, w: u32, h: u32) -> GrayImage {
    if g.width() == 0 || g.height() == 0 {
        return GrayImage::new(w, h);
    }
    image::DynamicImage::ImageLuma8(g.clone()).resize_exact(w, h, image::imageops::FilterType::Triangle).into_luma8()
}

/// Variance of the 4-neighbour Laplacian over the interior of `g` (0 for images smaller than 3x3). High on sharp
/// detail, low on blur.
pub(crate) fn laplacian_variance(g: &GrayImage) -> f64 {
    let (w, h) = (g.width() as usize, g.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let p = g.as_raw();
    let (mut sum, mut sum_sq) = (0i64, 0i64);
    for y in 1..h - 1 {
        let (up, mid, down) = (&p[(y - 1) * w..][..w], &p[y * w..][..w], &p[(y + 1) * w..][..w]);
        for x in 1..w - 1 {
            let l = up[x] as i32 + down[x] as i32 + mid[x - 1] as i32 + mid[x + 1] as i32 - 4 * mid[x] as i32;
            sum += l as i64;
            sum_sq += (l * l) as i64;
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum as f64 / n;
    (sum_sq as f64 / n - mean * mean).max(0.0)
}

/// Left-right mirror symmetry of `g`: the correlation (-1..1) between each pixel of the left half and its mirror
/// image in the right half. A face looking at the camera is close to symmetric; a turned head is not.
pub(crate) fn mirror_symmetry(g: &GrayImage) -> f64 {
    let (w, h) = (g.width() as usize, g.height() as usize);
    if w < 4 || h == 0 {
        return 0.0;
    }
    let p = g.as_raw();
    let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for row in p.chunks_exact(w) {
        for x in 0..w / 2 {
            let (a, b) = (row[x] as f64, row[w - 1 - x] as f64);
            sa += a;
            sb += b;
            saa += a * a;
            sbb += b * b;
            sab += a * b;
        }
    }
    let n = ((w / 2) * h) as f64;
    let cov = sab / n - (sa / n) * (sb / n);
    let va = saa / n - (sa / n).powi(2);
    let vb = sbb / n - (sb / n).powi(2);
    if va <= 1e-9 || vb <= 1e-9 {
        return 0.0;
    }
    cov / (va * vb).sqrt()
}

/// Gradient magnitude (mean of |dx| and |dy|, central differences; 0 on the border). Less sensitive to uneven
/// lighting than the intensities themselves.
pub(crate) fn gradient_magnitude(g: &GrayImage) -> GrayImage {
    let (w, h) = (g.width() as usize, g.height() as usize);
    let mut out = GrayImage::new(g.width(), g.height());
    if w < 3 || h < 3 {
        return out;
    }
    let p = g.as_raw();
    let o: &mut [u8] = &mut out;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let dx = p[y * w + x + 1] as i32 - p[y * w + x - 1] as i32;
            let dy = p[(y + 1) * w + x] as i32 - p[(y - 1) * w + x] as i32;
            o[y * w + x] = ((dx.abs() + dy.abs()) / 2).min(255) as u8;
        }
    }
    out
}

/// Exposure of a grey region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exposure {
    /// Mean luma, 0..255.
    pub mean: f64,
    /// Share of pixels at or above `bright` (clipped highlights), 0..1.
    pub clipped_high: f64,
    /// Share of pixels at or below `dark` (crushed shadows), 0..1.
    pub clipped_low: f64,
}

/// Luma at or above which a pixel counts as a clipped highlight.
pub(crate) const CLIP_HIGH: u8 = 250;
/// Luma at or below which a pixel counts as crushed black.
pub(crate) const CLIP_LOW: u8 = 5;

/// Mean and clipped shares of `g` (all zero for an empty image).
pub(crate) fn exposure(g: &GrayImage) -> Exposure {
    let p = g.as_raw();
    if p.is_empty() {
        return Exposure { mean: 0.0, clipped_high: 0.0, clipped_low: 0.0 };
    }
    let (mut sum, mut high, mut low) = (0u64, 0u64, 0u64);
    for &v in p {
        sum += v as u64;
        high += (v >= CLIP_HIGH) as u64;
        low += (v <= CLIP_LOW) as u64;
    }
    let n = p.len() as f64;
    Exposure { mean: sum as f64 / n, clipped_high: high as f64 / n, clipped_low: low as f64 / n }
}

/// Signed horizontal gradient summed down each column of `region` (a vertical border with the same contrast along
/// its length adds up; text and texture, with edges of both signs, cancel out), as absolute values.
pub(crate) fn column_edge_profile(g: &GrayImage, region: Rect) -> Vec<f64> {
    let w = g.width() as usize;
    let p = g.as_raw();
    let mut out = vec![0.0; region.w as usize];
    if region.w < 3 {
        return out;
    }
    let mut acc = vec![0i64; region.w as usize];
    for y in region.y..region.y + region.h {
        let row = &p[y as usize * w..][..w];
        for (i, a) in acc.iter_mut().enumerate().take(region.w as usize - 1).skip(1) {
            let x = region.x as usize + i;
            *a += row[x + 1] as i64 - row[x - 1] as i64;
        }
    }
    let n = region.h.max(1) as f64;
    for (o, a) in out.iter_mut().zip(acc) {
        *o = (a as f64).abs() / n;
    }
    out
}

/// Signed vertical gradient summed along each row of `region`, as absolute values (see [`column_edge_profile`]).
pub(crate) fn row_edge_profile(g: &GrayImage, region: Rect) -> Vec<f64> {
    let w = g.width() as usize;
    let p = g.as_raw();
    let mut out = vec![0.0; region.h as usize];
    if region.h < 3 {
        return out;
    }
    let n = region.w.max(1) as f64;
    for (i, o) in out.iter_mut().enumerate().skip(1).take(region.h as usize - 2) {
        let y = region.y as usize + i;
        let (up, down) = (&p[(y - 1) * w..][..w], &p[(y + 1) * w..][..w]);
        let s: i64 = (region.x as usize..(region.x + region.w) as usize).map(|x| down[x] as i64 - up[x] as i64).sum();
        *o = (s as f64).abs() / n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    fn checker(w: u32, h: u32, cell: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| Luma([if (x / cell + y / cell).is_multiple_of(2) { 30 } else { 220 }]))
    }

    #[test]
    fn downscale_averages_and_reports_the_factor() {
        let rgb = RgbImage::from_fn(
            1280,
            720,
            |x, _| if x.is_multiple_of(2) { Rgb([0, 0, 0]) } else { Rgb([255, 255, 255]) },
        );
        let (g, f) = gray_downscaled(&rgb, 480);
        assert_eq!(f, 3);
        assert_eq!(g.dimensions(), (426, 240));
        // Three columns: black, white, black or white, black, white: a third or two thirds grey.
        assert!(g.pixels().all(|p| (80..=175).contains(&p.0[0])), "{:?}", g.get_pixel(0, 0));
        let (g1, f1) = gray_downscaled(&RgbImage::new(100, 50), 480);
        assert_eq!((g1.dimensions(), f1), ((100, 50), 1));
    }

    #[test]
    fn laplacian_variance_is_high_on_detail_and_zero_on_flat() {
        let flat = GrayImage::from_pixel(64, 64, Luma([128]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let sharp = checker(64, 64, 2);
        let blurred = image::imageops::blur(&sharp, 2.0);
        assert!(laplacian_variance(&sharp) > 10.0 * laplacian_variance(&blurred));
        assert_eq!(laplacian_variance(&GrayImage::new(2, 2)), 0.0);
    }

    #[test]
    fn symmetry_is_high_for_mirrored_content_and_low_otherwise() {
        // A cartoon face: two eyes and a mouth placed symmetrically about the middle (x and 63 - x).
        let sym = GrayImage::from_fn(64, 64, |x, y| {
            let eye = |cx: i32| (x as i32 - cx).pow(2) + (y as i32 - 24).pow(2) < 30;
            let mouth = (22..=41).contains(&x) && (44..48).contains(&y);
            Luma([if eye(20) || eye(43) || mouth { 40 } else { 150 + (y / 4) as u8 }])
        });
        assert!(mirror_symmetry(&sym) > 0.95);
        assert!(mirror_symmetry(&gradient_magnitude(&sym)) > 0.9);
        let ramp = GrayImage::from_fn(64, 64, |x, _| Luma([(x * 4) as u8]));
        assert!(mirror_symmetry(&ramp) < -0.9);
        assert_eq!(mirror_symmetry(&GrayImage::from_pixel(8, 8, Luma([9]))), 0.0);
    }

    #[test]
    fn exposure_counts_clipped_pixels() {
        let g = GrayImage::from_fn(10, 10, |x, _| {
            Luma([if x < 2 {
                255
            } else if x < 5 {
                0
            } else {
                100
            }])
        });
        let e = exposure(&g);
        assert!((e.clipped_high - 0.2).abs() < 1e-9 && (e.clipped_low - 0.3).abs() < 1e-9);
        assert!((e.mean - (2.0 * 255.0 + 5.0 * 100.0) / 10.0).abs() < 1e-9);
        assert_eq!(exposure(&GrayImage::new(0, 0)).mean, 0.0);
    }

    #[test]
    fn edge_profiles_peak_on_a_bright_rectangle_border() {
        let g = GrayImage::from_fn(100, 80, |x, y| {
            Luma([if (20..70).contains(&x) && (10..60).contains(&y) { 200 } else { 50 }])
        });
        let all = Rect { x: 0, y: 0, w: 100, h: 80 };
        let cols = column_edge_profile(&g, all);
        let rows = row_edge_profile(&g, all);
        let argmax = |v: &[f64], r: std::ops::Range<usize>| r.max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0);
        assert!((19..=20).contains(&argmax(&cols, 0..50)));
        assert!((69..=70).contains(&argmax(&cols, 50..100)));
        assert!((9..=10).contains(&argmax(&rows, 0..40)));
        assert!((59..=60).contains(&argmax(&rows, 40..80)));
    }

    #[test]
    fn rect_clamps() {
        assert_eq!(Rect::from_f64(-5.0, 10.0, 50.0, 500.0, 40, 100), Rect { x: 0, y: 10, w: 40, h: 90 });
        let a = Rect { x: 0, y: 0, w: 10, h: 10 };
        assert_eq!(a.intersect(&Rect { x: 5, y: 8, w: 10, h: 10 }), Rect { x: 5, y: 8, w: 5, h: 2 });
        assert_eq!(a.intersect(&Rect { x: 20, y: 0, w: 5, h: 5 }).area(), 0);
    }
}
