//! Frame decoding against real photos: webcam-style MJPEG without Huffman tables, corrupt and truncated frames.

use ekyc_kiosk::camera::mjpeg::{decode_mjpeg, read_header, remove_huffman_tables, with_huffman_tables};
use ekyc_kiosk::camera::{FrameError, decode_image_bytes};
use image::RgbImage;
use std::path::Path;

fn fixture(name: &str) -> RgbImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap().into_rgb8()
}

/// Encodes like a webcam: 4:2:2 or 4:2:0, quality 80, standard tables.
fn encode(img: &RgbImage, sampling: jpeg_encoder::SamplingFactor, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
    enc.set_sampling_factor(sampling);
    enc.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn plain_decode(bytes: &[u8]) -> Result<RgbImage, image::ImageError> {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).map(|i| i.into_rgb8())
}

#[test]
fn frames_without_huffman_tables_decode_identically_once_the_standard_tables_are_inserted() {
    use jpeg_encoder::SamplingFactor::{R_4_2_0, R_4_2_2};
    for (name, sampling) in [("astronaut.png", R_4_2_2), ("astronaut.png", R_4_2_0), ("chelsea.png", R_4_2_2)] {
        let photo = fixture(name);
        let full = encode(&photo, sampling, 80);
        let reference = plain_decode(&full).unwrap();
        let stripped = remove_huffman_tables(&full).unwrap();
        assert!(!read_header(&stripped).unwrap().has_huffman_tables, "{name}: DHT removed");
        // Without the fix the decoder refuses the frame, as with a real UVC webcam.
        assert!(plain_decode(&stripped).is_err(), "{name}: the stripped frame must not decode as is");
        // With it, the result is pixel-identical to the frame that carried the tables.
        let fixed = with_huffman_tables(&stripped).unwrap();
        assert_eq!(fixed.len(), stripped.len() + 420);
        assert_eq!(plain_decode(&fixed).unwrap(), reference, "{name}");
        assert_eq!(decode_mjpeg(&stripped).unwrap(), reference, "{name}");
        // A frame that has its tables is passed through untouched.
        assert_eq!(decode_mjpeg(&full).unwrap(), reference, "{name}");
    }
}

#[test]
fn greyscale_frames_decode_to_rgb() {
    let grey = image::DynamicImage::ImageLuma8(
        image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera.png")).unwrap().into_luma8(),
    );
    let mut out = Vec::new();
    grey.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
    let rgb = decode_mjpeg(&out).unwrap();
    assert_eq!(rgb.dimensions(), (512, 512));
    let p = rgb.get_pixel(100, 100).0;
    assert!(p[0] == p[1] && p[1] == p[2]);
}

#[test]
fn corrupt_truncated_and_absurd_frames_are_refused_without_panicking() {
    let full = encode(&fixture("astronaut.png"), jpeg_encoder::SamplingFactor::R_4_2_2, 80);
    let stripped = remove_huffman_tables(&full).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut refused = 0;
    let mut decoded = 0;
    // Every prefix length class: a truncated frame never decodes (its end-of-image marker is missing).
    for cut in [2, 4, 20, 200, 600, stripped.len() / 2, stripped.len() - 2] {
        assert!(decode_mjpeg(&stripped[..cut]).is_err(), "cut at {cut}");
    }
    // Random byte damage: each frame either decodes to the right size or is refused with an error.
    for _ in 0..200 {
        let mut bad = stripped.clone();
        for _ in 0..rng.usize(1..8) {
            let i = rng.usize(..bad.len());
            bad[i] = rng.u8(..);
        }
        match decode_mjpeg(&bad) {
            Ok(img) => {
                assert_eq!(img.dimensions(), (512, 512));
                decoded += 1;
            }
            Err(_) => refused += 1,
        }
    }
    assert_eq!(refused + decoded, 200);
    assert!(refused > 0, "some damage must be detected");
    // A header that claims 60000x60000 is refused before any allocation.
    let sof = full.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut huge = full.clone();
    huge[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    assert_eq!(decode_mjpeg(&huge).unwrap_err(), FrameError::Dimensions { width: 60000, height: 60000 });
    assert!(decode_image_bytes(&huge).is_err());
}
