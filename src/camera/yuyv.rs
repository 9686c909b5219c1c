//! YUYV (YUY2, 4:2:2 packed: Y0 U Y1 V) frames to RGB with the BT.601 limited-range matrix in integer arithmetic,
//! as UVC webcams deliver them. Pure functions, run on the camera thread.

use super::{FrameError, check_dimensions};
use image::RgbImage;

/// Converts one YUYV frame of `width` x `height` pixels. The buffer must hold exactly `width * height * 2` bytes and
/// the width must be even; anything else is refused before the output is allocated.
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, FrameError> {
    check_dimensions(width, height)?;
    if !width.is_multiple_of(2) {
        return Err(FrameError::Dimensions { width, height });
    }
    let pixels = width as usize * height as usize;
    let expected = pixels * 2;
    if data.len() != expected {
        return Err(FrameError::Length { expected, actual: data.len() });
    }
    let mut out = vec![0u8; pixels * 3];
    for (src, dst) in data.chunks_exact(4).zip(out.chunks_exact_mut(6)) {
        let d = i32::from(src[1]) - 128;
        let e = i32::from(src[3]) - 128;
        let r = 409 * e + 128;
        let g = -100 * d - 208 * e + 128;
        let b = 516 * d + 128;
        let y0 = 298 * (i32::from(src[0]) - 16);
        let y1 = 298 * (i32::from(src[2]) - 16);
        dst[0] = clamp8((y0 + r) >> 8);
        dst[1] = clamp8((y0 + g) >> 8);
        dst[2] = clamp8((y0 + b) >> 8);
        dst[3] = clamp8((y1 + r) >> 8);
        dst[4] = clamp8((y1 + g) >> 8);
        dst[5] = clamp8((y1 + b) >> 8);
    }
    // The buffer has exactly width * height * 3 bytes.
    RgbImage::from_raw(width, height, out).ok_or(FrameError::Length { expected: pixels * 3, actual: 0 })
}

/// One pixel's RGB from its Y, U, V samples (BT.601 limited range, integer), for the other packings of the same
/// samples (NV12).
#[inline(always)]
pub(crate) fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let y = 298 * (i32::from(y) - 16);
    [clamp8((y + 409 * e + 128) >> 8), clamp8((y - 100 * d - 208 * e + 128) >> 8), clamp8((y + 516 * d + 128) >> 8)]
}

#[inline(always)]
fn clamp8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Converts RGB to one YUYV pair's worth of (Y, U, V) with the inverse BT.601 limited-range matrix. For tests and
/// benchmarks that need camera-like YUYV input.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (clamp8(y), clamp8(u), clamp8(v))
}

/// Packs an RGB image as YUYV (chroma of each pixel pair averaged). For tests and benchmarks.
pub fn rgb_to_yuyv(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 3 * 2);
    for pair in img.as_raw().chunks_exact(6) {
        let (y0, u0, v0) = rgb_to_yuv(pair[0], pair[1], pair[2]);
        let (y1, u1, v1) = rgb_to_yuv(pair[3], pair[4], pair[5]);
        let u = ((u16::from(u0) + u16::from(u1)) / 2) as u8;
        let v = ((u16::from(v0) + u16::from(v1)) / 2) as u8;
        out.extend_from_slice(&[y0, u, y1, v]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_colours_convert() {
        // (Y, U, V) of BT.601 limited-range test colours, and the RGB expected (within 2 per channel).
        let cases = [
            ("black", (16, 128, 128), [0, 0, 0]),
            ("white", (235, 128, 128), [255, 255, 255]),
            ("grey", (126, 128, 128), [128, 128, 128]),
            ("red", (81, 90, 240), [255, 0, 0]),
            ("green", (145, 54, 34), [0, 255, 0]),
            ("blue", (41, 240, 110), [0, 0, 255]),
            ("yellow", (210, 16, 146), [255, 255, 0]),
            ("below black clamps", (0, 128, 128), [0, 0, 0]),
            ("above white clamps", (255, 128, 128), [255, 255, 255]),
        ];
        for (name, (y, u, v), want) in cases {
            let img = yuyv_to_rgb(2, 1, &[y, u, y, v]).unwrap();
            for px in img.pixels() {
                for c in 0..3 {
                    assert!((i32::from(px.0[c]) - want[c]).abs() <= 2, "{name}: got {:?}, want {want:?}", px.0);
                }
            }
        }
    }

    #[test]
    fn each_pixel_of_a_pair_keeps_its_luma() {
        let img = yuyv_to_rgb(2, 1, &[16, 128, 235, 128]).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
    }

    #[test]
    fn round_trip_is_close() {
        let src = RgbImage::from_fn(64, 8, |x, y| image::Rgb([(x * 4) as u8, (y * 30) as u8, 200]));
        let back = yuyv_to_rgb(64, 8, &rgb_to_yuyv(&src)).unwrap();
        let max = src.as_raw().iter().zip(back.as_raw()).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max();
        assert!(max.unwrap() <= 12, "max channel error {max:?}");
    }

    #[test]
    fn wrong_lengths_and_sizes_are_refused() {
        let cases: [(u32, u32, usize); 5] = [(4, 2, 15), (4, 2, 17), (3, 2, 12), (0, 2, 0), (9000, 2, 36000)];
        for (w, h, len) in cases {
            assert!(yuyv_to_rgb(w, h, &vec![0; len]).is_err(), "{w}x{h} with {len} bytes");
        }
        assert!(yuyv_to_rgb(4, 2, &[0; 16]).is_ok());
    }
}
