//! NV12 frames (4:2:0: a full-resolution Y plane, then one half-resolution plane of interleaved U V pairs) to RGB
//! with the same BT.601 limited-range integer matrix as [`super::yuyv`]. Many laptop and USB cameras offer NV12
//! beside (or instead of) YUYV, and it is half the bytes per frame. Pure functions, run on the camera thread.

use super::yuyv::yuv_to_rgb;
use super::{FrameError, check_dimensions};
use image::RgbImage;

/// Bytes of one tightly packed NV12 frame: `width * height` of luma plus half that of chroma.
pub fn nv12_len(width: u32, height: u32) -> usize {
    let pixels = width as usize * height as usize;
    pixels + pixels / 2
}

/// Converts one NV12 frame of `width` x `height` pixels. Width and height must be even and the buffer must hold
/// exactly [`nv12_len`] bytes (rows without padding); anything else is refused before the output is allocated, so
/// a driver that pads its rows gives counted, dropped frames rather than a skewed picture.
pub fn nv12_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<RgbImage, FrameError> {
    check_dimensions(width, height)?;
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(FrameError::Dimensions { width, height });
    }
    let expected = nv12_len(width, height);
    if data.len() != expected {
        return Err(FrameError::Length { expected, actual: data.len() });
    }
    let (w, h) = (width as usize, height as usize);
    let (luma, chroma) = data.split_at(w * h);
    let mut out = vec![0u8; w * h * 3];
    for (row, dst_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let y_row = &luma[row * w..(row + 1) * w];
        // One chroma row serves two luma rows.
        let uv_row = &chroma[(row / 2) * w..(row / 2 + 1) * w];
        for ((ys, uv), dst) in y_row.chunks_exact(2).zip(uv_row.chunks_exact(2)).zip(dst_row.chunks_exact_mut(6)) {
            let [r, g, b] = yuv_to_rgb(ys[0], uv[0], uv[1]);
            dst[..3].copy_from_slice(&[r, g, b]);
            let [r, g, b] = yuv_to_rgb(ys[1], uv[0], uv[1]);
            dst[3..].copy_from_slice(&[r, g, b]);
        }
    }
    // The buffer has exactly width * height * 3 bytes.
    RgbImage::from_raw(width, height, out).ok_or(FrameError::Length { expected: w * h * 3, actual: 0 })
}

/// Packs an RGB image (even width and height) as NV12, each chroma sample the average of its 2x2 block. For tests
/// and benchmarks that need camera-like NV12 input.
pub fn rgb_to_nv12(img: &RgbImage) -> Vec<u8> {
    use super::yuyv::rgb_to_yuv;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = vec![0u8; nv12_len(img.width(), img.height())];
    let (luma, chroma) = out.split_at_mut(w * h);
    for (i, px) in img.pixels().enumerate() {
        luma[i] = rgb_to_yuv(px.0[0], px.0[1], px.0[2]).0;
    }
    for by in 0..h / 2 {
        for bx in 0..w / 2 {
            let (mut u, mut v) = (0u32, 0u32);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = img.get_pixel((2 * bx + dx) as u32, (2 * by + dy) as u32).0;
                let (_, pu, pv) = rgb_to_yuv(p[0], p[1], p[2]);
                u += u32::from(pu);
                v += u32::from(pv);
            }
            chroma[by * w + 2 * bx] = (u / 4) as u8;
            chroma[by * w + 2 * bx + 1] = (v / 4) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x2 NV12 frame of one colour.
    fn solid(y: u8, u: u8, v: u8) -> Vec<u8> {
        vec![y, y, y, y, u, v]
    }

    #[test]
    fn known_colours_convert() {
        // (Y, U, V) of BT.601 limited-range test colours, and the RGB expected (within 2 per channel).
        let cases = [
            ("black", (16, 128, 128), [0, 0, 0]),
            ("white", (235, 128, 128), [255, 255, 255]),
            ("red", (81, 90, 240), [255, 0, 0]),
            ("green", (145, 54, 34), [0, 255, 0]),
            ("blue", (41, 240, 110), [0, 0, 255]),
            ("above white clamps", (255, 128, 128), [255, 255, 255]),
        ];
        for (name, (y, u, v), want) in cases {
            let img = nv12_to_rgb(2, 2, &solid(y, u, v)).unwrap();
            for px in img.pixels() {
                for c in 0..3 {
                    assert!((i32::from(px.0[c]) - want[c]).abs() <= 2, "{name}: got {:?}, want {want:?}", px.0);
                }
            }
        }
    }

    #[test]
    fn chroma_rows_are_shared_by_two_luma_rows_and_planes_are_not_mixed_up() {
        // 2x4: the top 2x2 block is red, the bottom one blue; luma differs per pixel.
        let data = [81, 81, 81, 81, 41, 41, 41, 41, 90, 240, 240, 110];
        let img = nv12_to_rgb(2, 4, &data).unwrap();
        assert!(img.get_pixel(1, 1).0[0] > 240 && img.get_pixel(1, 1).0[2] < 10, "{:?}", img.get_pixel(1, 1));
        assert!(img.get_pixel(0, 2).0[2] > 240 && img.get_pixel(0, 2).0[0] < 10, "{:?}", img.get_pixel(0, 2));
    }

    #[test]
    fn round_trip_is_close() {
        let src = RgbImage::from_fn(64, 8, |x, y| image::Rgb([(x / 2 * 8) as u8, (y / 2 * 60) as u8, 200]));
        let back = nv12_to_rgb(64, 8, &rgb_to_nv12(&src)).unwrap();
        let max = src.as_raw().iter().zip(back.as_raw()).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max();
        assert!(max.unwrap() <= 12, "max channel error {max:?}");
    }

    #[test]
    fn wrong_lengths_and_sizes_are_refused() {
        // (width, height, bytes): short, long, odd width, odd height, zero, too wide, padded rows.
        let cases: [(u32, u32, usize); 7] =
            [(4, 2, 11), (4, 2, 13), (3, 2, 9), (4, 3, 18), (0, 2, 0), (9000, 2, 27000), (4, 2, 16)];
        for (w, h, len) in cases {
            assert!(nv12_to_rgb(w, h, &vec![0; len]).is_err(), "{w}x{h} with {len} bytes");
        }
        assert!(nv12_to_rgb(4, 2, &[0; 12]).is_ok());
    }
}
