//! JPEG encoding to a size budget. Owns the `[encode]` configuration and [`UploadJpeg`], the only image type the
//! queue and the uploader accept: made from a [`CheckedCapture`] ([`encode_checked`]), from an operator's file
//! ([`UploadJpeg::from_operator_file`]) or by shrinking another one after a 413 ([`reencode_smaller`]). Encodes
//! with libjpeg-turbo (the `turbojpeg` crate, 4:2:0), chosen by measurement: `benches/encode.rs` runs it side by
//! side with the pure-Rust `jpeg-encoder` (SIMD), which took about 2.7x as long. Writes no metadata (JFIF header
//! only), lowers the
//! quality and then the size until the budget is met, and verifies that the output decodes before returning it.
//! Runs on the capture thread (kiosk), the uploader thread (the retry after a 413) or the main thread (CLI).

use crate::capture::CheckedCapture;
use image::{ImageDecoder, ImageFormat, RgbImage};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

mod scale;

/// The contract's limit on base64 text: per image for the face, summed over the sides for the document.
pub const MAX_BASE64_BYTES: usize = 30_000_000;
/// The largest image file an operator may give (far above any sane photo; bounds the read).
pub const MAX_INPUT_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The largest side of an image we decode (checked from the header, before any pixel is allocated).
pub const MAX_INPUT_SIDE: u32 = 16_384;
/// The most pixels of an image we decode (64 MP: about 200 MB as RGB).
pub const MAX_INPUT_PIXELS: u64 = 64_000_000;
/// Images are never shrunk below this longest side to meet a budget (an unreadable document helps no one).
const MIN_DIMENSION: u32 = 320;
/// Each size step keeps this share of the sides.
const SHRINK_STEP: f64 = 0.8;
/// The quality ladder steps down by this much.
const QUALITY_STEP: u8 = 8;
/// The JPEG encoder takes 16-bit sides.
const MAX_JPEG_SIDE: u32 = u16::MAX as u32;

/// `[encode]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// JPEG quality to start from (1..100).
    pub quality: u8,
    /// Lowest quality tried before the image is made smaller.
    pub min_quality: u8,
    /// Longest side of an uploaded image, pixels (larger images are scaled down first).
    pub max_dimension: u32,
    /// Largest JPEG per image, bytes (the contract's base64 limit applies on top).
    pub max_bytes: usize,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig { quality: 85, min_quality: 50, max_dimension: 1600, max_bytes: 2_000_000 }
    }
}

impl EncodeConfig {
    /// Checks that every value is in range; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.quality) {
            return Err(format!("encode.quality: must be between 1 and 100, got {}", self.quality));
        }
        if !(1..=self.quality).contains(&self.min_quality) {
            return Err(format!("encode.min_quality: must be between 1 and encode.quality, got {}", self.min_quality));
        }
        if !(MIN_DIMENSION..=MAX_INPUT_SIDE).contains(&self.max_dimension) {
            return Err(format!(
                "encode.max_dimension: must be between {MIN_DIMENSION} and {MAX_INPUT_SIDE}, got {}",
                self.max_dimension
            ));
        }
        if self.max_bytes < 10_000 {
            return Err(format!("encode.max_bytes: must be at least 10000, got {}", self.max_bytes));
        }
        Ok(())
    }

    /// The per-image budget in force: `max_bytes`, never more than the contract's base64 limit allows.
    pub fn budget(&self) -> usize {
        self.max_bytes.min(max_raw_for_base64(MAX_BASE64_BYTES))
    }
}

/// Why an image could not be made into an [`UploadJpeg`]. Messages never carry pixels.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// The image file could not be read.
    #[error("cannot read image file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than any photo we accept.
    #[error("image file is larger than {MAX_INPUT_FILE_BYTES} bytes")]
    FileTooLarge,
    /// The bytes are not a JPEG or PNG image.
    #[error("not a JPEG or PNG image")]
    UnsupportedFormat,
    /// The image's dimensions are absurd (refused before decoding).
    #[error(
        "image is {width}x{height} pixels, larger than accepted ({MAX_INPUT_SIDE} per side, {MAX_INPUT_PIXELS} pixels)"
    )]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The image has no pixels.
    #[error("image is empty (0 pixels)")]
    Empty,
    /// The image does not decode (corrupt or truncated).
    #[error("image does not decode: {0}")]
    Decode(String),
    /// The JPEG encoder failed.
    #[error("jpeg encoding failed: {0}")]
    Encode(String),
    /// No quality and size within the limits meets the byte budget.
    #[error("cannot fit the image into {budget} bytes")]
    CannotFit {
        /// The budget, bytes.
        budget: usize,
    },
    /// The encoded JPEG did not decode back to the expected size (an encoder fault; nothing is returned).
    #[error("encoded jpeg failed verification: {0}")]
    Verify(String),
    /// An `[encode]` value is out of range (the message names the key).
    #[error("{0}")]
    Config(String),
}

/// How an [`UploadJpeg`] came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A camera capture that passed the on-device quality checks.
    CheckedCapture,
    /// A file an operator chose on the command line (decoded, validated and re-encoded, not quality-checked).
    OperatorFile,
}

/// A JPEG ready to upload: it decodes, fits the per-image budget and carries no metadata. It can only be made from
/// a capture that passed the quality checks or from an operator's file, so nothing else can be queued.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadJpeg {
    bytes: Vec<u8>,
    width: u32,
    height: u32,
    origin: Origin,
}

impl std::fmt::Debug for UploadJpeg {
    // Never print the biometric bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadJpeg")
            .field("len", &self.bytes.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("origin", &self.origin)
            .finish()
    }
}

impl UploadJpeg {
    /// The JPEG bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Where it came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }
    /// Length of its base64 text.
    pub fn base64_len(&self) -> usize {
        base64_len(self.bytes.len())
    }

    /// Reads, decodes and re-encodes an image file the operator chose (JPEG or PNG; metadata dropped, PNG made
    /// JPEG) to the budget. The read is bounded and absurd dimensions are refused before decoding.
    pub fn from_operator_file(path: &Path, config: &EncodeConfig) -> Result<UploadJpeg, EncodeError> {
        let bytes = read_image_file(path)?;
        UploadJpeg::from_operator_bytes(&bytes, config)
    }

    /// As [`UploadJpeg::from_operator_file`], from bytes in memory.
    pub fn from_operator_bytes(bytes: &[u8], config: &EncodeConfig) -> Result<UploadJpeg, EncodeError> {
        let image = decode_untrusted(bytes)?;
        encode_rgb(&image, config, Origin::OperatorFile)
    }

    /// Test-only: wraps bytes without checks (the queue's unit tests store arbitrary bytes).
    #[cfg(test)]
    pub(crate) fn for_tests(bytes: Vec<u8>, width: u32, height: u32) -> UploadJpeg {
        UploadJpeg { bytes, width, height, origin: Origin::OperatorFile }
    }
}

/// Length of the base64 text of `n` bytes (padded): `ceil(n / 3) * 4`.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// The most raw bytes whose base64 text fits in `b64` bytes.
pub fn max_raw_for_base64(b64: usize) -> usize {
    b64 / 4 * 3
}

/// Encodes a capture that passed the quality checks.
pub fn encode_checked(capture: &CheckedCapture, config: &EncodeConfig) -> Result<UploadJpeg, EncodeError> {
    encode_rgb(capture.image(), config, Origin::CheckedCapture)
}

/// Re-encodes an upload to at most `max_bytes` (the uploader's one retry after a 413): decoded, then encoded
/// again at a lower quality and, if needed, a smaller size. The origin is kept.
pub fn reencode_smaller(jpeg: &UploadJpeg, max_bytes: usize) -> Result<UploadJpeg, EncodeError> {
    let image = decode_untrusted(&jpeg.bytes)?;
    let config = EncodeConfig {
        quality: 75,
        min_quality: 35,
        max_dimension: jpeg.width.max(jpeg.height).clamp(MIN_DIMENSION, MAX_INPUT_SIDE),
        max_bytes: max_bytes.min(jpeg.bytes.len().saturating_sub(1)),
    };
    if config.max_bytes == 0 {
        return Err(EncodeError::CannotFit { budget: max_bytes });
    }
    encode_to_budget(&image, &config, jpeg.origin)
}

/// Makes the sides of one document fit the contract's summed base64 limit (`max_total_base64`, normally
/// [`MAX_BASE64_BYTES`]): while the sum is over, the largest side is re-encoded to its share of the limit.
/// Sides already within it are returned unchanged.
pub fn fit_document_sides(mut sides: Vec<UploadJpeg>, max_total_base64: usize) -> Result<Vec<UploadJpeg>, EncodeError> {
    let total = |s: &[UploadJpeg]| s.iter().map(UploadJpeg::base64_len).sum::<usize>();
    // Each round shrinks one side strictly; a handful of rounds suffices for three sides.
    for _ in 0..(sides.len() * 3) {
        if total(&sides) <= max_total_base64 {
            return Ok(sides);
        }
        let Some((i, _)) = sides.iter().enumerate().max_by_key(|(_, s)| s.bytes.len()) else {
            return Ok(sides);
        };
        let share = max_raw_for_base64(max_total_base64 / sides.len());
        let target = share.min(sides[i].bytes.len().saturating_sub(1));
        sides[i] = reencode_smaller(&sides[i], target)?;
    }
    if total(&sides) <= max_total_base64 { Ok(sides) } else { Err(EncodeError::CannotFit { budget: max_total_base64 }) }
}

/// True when the sides' summed base64 text is within the contract's limit.
pub fn document_sides_fit(sides: &[&UploadJpeg]) -> bool {
    sides.iter().map(|s| s.base64_len()).sum::<usize>() <= MAX_BASE64_BYTES
}

fn read_image_file(path: &Path) -> Result<Vec<u8>, EncodeError> {
    let err = |source| EncodeError::Read { path: path.to_owned(), source };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > MAX_INPUT_FILE_BYTES {
        return Err(EncodeError::FileTooLarge);
    }
    Ok(bytes)
}

/// Decodes a JPEG or PNG from an untrusted source to RGB, upright (an EXIF orientation is applied). The format is
/// sniffed from the bytes, the dimensions are read from the header and refused if absurd before any pixel is
/// allocated, and the decoder runs with allocation limits.
pub fn decode_untrusted(bytes: &[u8]) -> Result<RgbImage, EncodeError> {
    let format = image::guess_format(bytes).map_err(|_| EncodeError::UnsupportedFormat)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(EncodeError::UnsupportedFormat);
    }
    // A frame saved from a webcam's MJPEG stream carries no Huffman tables (the standard ones are implied): insert
    // them as the camera path does, so a frame decodes the same wherever it comes from.
    // A file our frame parser does not follow is left to the general decoder as it is.
    let tabled = match format {
        ImageFormat::Jpeg => crate::camera::mjpeg::with_huffman_tables(bytes).ok(),
        _ => None,
    };
    let bytes = tabled.as_deref().unwrap_or(bytes);
    let reader = || image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let (width, height) = reader().into_dimensions().map_err(|e| EncodeError::Decode(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(EncodeError::Empty);
    }
    if width > MAX_INPUT_SIDE || height > MAX_INPUT_SIDE || width as u64 * height as u64 > MAX_INPUT_PIXELS {
        return Err(EncodeError::TooLarge { width, height });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    // The decoder's buffers: at most RGBA 16-bit (8 bytes a pixel) of the largest accepted image.
    limits.max_alloc = Some(MAX_INPUT_PIXELS * 8);
    let mut r = reader();
    r.limits(limits);
    let mut decoder = r.into_decoder().map_err(|e| EncodeError::Decode(e.to_string()))?;
    // Phone photos are often stored sideways with an EXIF orientation tag; the metadata is dropped on re-encoding,
    // so the rotation is applied to the pixels. An unreadable tag means "as stored".
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(|e| EncodeError::Decode(e.to_string()))?;
    decoded.apply_orientation(orientation);
    Ok(decoded.into_rgb8())
}

/// Encodes an RGB image to the configured budget.
fn encode_rgb(image: &RgbImage, config: &EncodeConfig, origin: Origin) -> Result<UploadJpeg, EncodeError> {
    config.validate().map_err(EncodeError::Config)?;
    encode_to_budget(image, config, origin)
}

/// Scales `image` down to `max_dimension`, then walks the quality ladder and, if still over, makes it smaller,
/// until the JPEG fits `config.budget()`. The result is verified to decode at the expected size.
fn encode_to_budget(image: &RgbImage, config: &EncodeConfig, origin: Origin) -> Result<UploadJpeg, EncodeError> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Err(EncodeError::Empty);
    }
    let budget = config.budget();
    let mut longest = w.max(h).min(config.max_dimension).min(MAX_JPEG_SIDE);
    loop {
        // Each size is scaled from the original, never from an already reduced copy.
        let scaled;
        let current: &RgbImage = if longest >= w.max(h) {
            image
        } else {
            let (sw, sh) = scaled_size(w, h, longest);
            scaled = resize(image, sw, sh);
            &scaled
        };
        let mut quality = config.quality;
        loop {
            let bytes = encode_jpeg(current, quality)?;
            if bytes.len() <= budget {
                let (vw, vh) = verify_jpeg(&bytes, Some(current.dimensions()))?;
                log::debug!("encoded {vw}x{vh} at quality {quality}: {} bytes (budget {budget})", bytes.len());
                return Ok(UploadJpeg { bytes, width: vw, height: vh, origin });
            }
            if quality <= config.min_quality {
                break;
            }
            quality = quality.saturating_sub(QUALITY_STEP).max(config.min_quality);
        }
        let next = (longest as f64 * SHRINK_STEP) as u32;
        if next < MIN_DIMENSION.min(w.max(h)) || next == longest {
            return Err(EncodeError::CannotFit { budget });
        }
        longest = next;
    }
}

/// Scales an RGB image down to `w` x `h`.
pub(crate) fn resize(image: &RgbImage, w: u32, h: u32) -> RgbImage {
    scale::downscale(image, w, h)
}

/// The size of a `w` x `h` image scaled so its longest side is `longest` (each side at least 1).
fn scaled_size(w: u32, h: u32, longest: u32) -> (u32, u32) {
    let s = longest as f64 / w.max(h) as f64;
    (((w as f64 * s).round() as u32).max(1), ((h as f64 * s).round() as u32).max(1))
}

/// One JPEG encode with libjpeg-turbo: 4:2:0 chroma, no metadata beyond the JFIF header. `quality` is clamped to
/// 1..=100. The output is not verified here (the budget loop verifies what it returns).
pub fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let (w, h) = image.dimensions();
    // JPEG's frame header holds 16-bit dimensions.
    if w == 0 || h == 0 || w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(EncodeError::TooLarge { width: w, height: h });
    }
    let input = turbojpeg::Image {
        pixels: image.as_raw().as_slice(),
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    let out = turbojpeg::compress(input, i32::from(quality.clamp(1, 100)), turbojpeg::Subsamp::Sub2x2)
        .map_err(|e| EncodeError::Encode(e.to_string()))?;
    Ok(out.to_vec())
}

/// Decodes `bytes` as JPEG and checks the dimensions (when given); returns them.
fn verify_jpeg(bytes: &[u8], expect: Option<(u32, u32)>) -> Result<(u32, u32), EncodeError> {
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) {
        return Err(EncodeError::Verify("not a jpeg".into()));
    }
    let img = decode_untrusted(bytes).map_err(|e| EncodeError::Verify(e.to_string()))?;
    let dims = img.dimensions();
    match expect {
        Some(e) if e != dims => {
            Err(EncodeError::Verify(format!("decodes as {}x{}, expected {}x{}", dims.0, dims.1, e.0, e.1)))
        }
        _ => Ok(dims),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A photo-like test image: the astronaut tiled and scaled to `w` x `h`, with mild noise.
    fn photo(w: u32, h: u32) -> RgbImage {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/astronaut.png");
        let base = image::open(p).unwrap().into_rgb8();
        let mut img =
            image::DynamicImage::ImageRgb8(base).resize_exact(w, h, image::imageops::FilterType::Triangle).into_rgb8();
        let mut s = 1u32;
        for px in img.pixels_mut() {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = (s >> 28) as i16 - 8;
            for c in px.0.iter_mut() {
                *c = (*c as i16 + n).clamp(0, 255) as u8;
            }
        }
        img
    }

    /// Segment markers between SOI and SOS.
    fn markers(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
            let m = jpeg[i + 1];
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            out.push((m, jpeg[i + 4..(i + 2 + len).min(jpeg.len())].to_vec()));
            if m == 0xDA {
                break;
            }
            i += 2 + len;
        }
        out
    }

    #[test]
    fn base64_lengths() {
        for (n, want) in [(0, 0), (1, 4), (2, 4), (3, 4), (4, 8), (22_500_000, 30_000_000)] {
            assert_eq!(base64_len(n), want, "{n}");
        }
        assert_eq!(base64_len(max_raw_for_base64(MAX_BASE64_BYTES)), MAX_BASE64_BYTES);
        assert!(base64_len(max_raw_for_base64(MAX_BASE64_BYTES) + 1) > MAX_BASE64_BYTES);
        let c = EncodeConfig { max_bytes: 50_000_000, ..Default::default() };
        assert_eq!(c.budget(), 22_500_000);
    }

    #[test]
    fn scales_down_encodes_without_metadata_and_decodes() {
        let img = photo(2400, 1350);
        let j = encode_rgb(&img, &EncodeConfig::default(), Origin::OperatorFile).unwrap();
        assert_eq!((j.width(), j.height()), (1600, 900));
        assert!(j.bytes().len() <= 2_000_000);
        let decoded = image::load_from_memory(j.bytes()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (1600, 900));
        let segs = markers(j.bytes());
        for (m, data) in &segs {
            if (0xE0..=0xEF).contains(m) {
                assert!(*m == 0xE0 && data.starts_with(b"JFIF\0"), "metadata segment {m:#x}");
            }
            assert_ne!(*m, 0xFE, "comment segment");
        }
        // 4:2:0: the luma component samples 2x2.
        let sof = segs.iter().find(|(m, _)| *m == 0xC0 || *m == 0xC2).unwrap();
        assert_eq!(sof.1[7], 0x22, "luma sampling");
    }

    #[test]
    fn a_tight_budget_lowers_quality_then_size() {
        let img = photo(1280, 720);
        let full = encode_rgb(&img, &EncodeConfig::default(), Origin::OperatorFile).unwrap();
        for budget in [full.bytes().len() / 2, 40_000, 12_000] {
            let c = EncodeConfig { max_bytes: budget.max(10_000), ..Default::default() };
            match encode_rgb(&img, &c, Origin::OperatorFile) {
                Ok(j) => {
                    assert!(j.bytes().len() <= c.max_bytes, "{budget}: {}", j.bytes().len());
                    image::load_from_memory(j.bytes()).unwrap();
                }
                Err(EncodeError::CannotFit { budget: b }) => assert_eq!(b, c.max_bytes),
                Err(e) => panic!("{e}"),
            }
        }
        // 40 kB is reachable for a 720p photo (smaller size if need be), 12 kB at 320 px too.
        let j =
            encode_rgb(&img, &EncodeConfig { max_bytes: 40_000, ..Default::default() }, Origin::OperatorFile).unwrap();
        assert!(j.bytes().len() <= 40_000);
        let c = EncodeConfig { max_bytes: 10_000, min_quality: 90, quality: 90, ..Default::default() };
        assert!(matches!(encode_rgb(&photo(1600, 1200), &c, Origin::OperatorFile), Err(EncodeError::CannotFit { .. })));
    }

    #[test]
    fn operator_png_becomes_jpeg_and_garbage_is_refused() {
        let mut png = Vec::new();
        photo(800, 600).write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png).unwrap();
        let j = UploadJpeg::from_operator_bytes(&png, &EncodeConfig::default()).unwrap();
        assert_eq!(image::guess_format(j.bytes()).unwrap(), ImageFormat::Jpeg);
        assert_eq!((j.width(), j.height(), j.origin()), (800, 600, Origin::OperatorFile));

        assert!(matches!(
            UploadJpeg::from_operator_bytes(b"hello world", &EncodeConfig::default()),
            Err(EncodeError::UnsupportedFormat)
        ));
        let truncated = &png[..png.len() / 2];
        assert!(matches!(
            UploadJpeg::from_operator_bytes(truncated, &EncodeConfig::default()),
            Err(EncodeError::Decode(_))
        ));
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert!(matches!(
            UploadJpeg::from_operator_bytes(gif, &EncodeConfig::default()),
            Err(EncodeError::UnsupportedFormat)
        ));
    }

    #[test]
    fn absurd_dimensions_are_refused_before_decoding() {
        // A PNG header claiming 100000 x 100000 pixels with no pixel data behind it.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        for chunk in [&b"IDAT\x78\x9c\x00\x00"[..], b"IEND"] {
            png.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
            png.extend_from_slice(chunk);
            png.extend_from_slice(&crc32(chunk).to_be_bytes());
        }
        let e = UploadJpeg::from_operator_bytes(&png, &EncodeConfig::default()).unwrap_err();
        assert!(matches!(e, EncodeError::TooLarge { width: 100_000, height: 100_000 }), "{e}");
        // The same for a JPEG whose SOF claims 60000 x 60000.
        let mut jpeg = encode_jpeg(&photo(16, 16), 80).unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        let e = UploadJpeg::from_operator_bytes(&jpeg, &EncodeConfig::default()).unwrap_err();
        assert!(matches!(e, EncodeError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn exif_orientation_is_applied_and_the_exif_dropped() {
        // A 40x20 JPEG tagged "rotate 90 degrees clockwise" (orientation 6), left half dark, right half light.
        let img =
            RgbImage::from_fn(
                40,
                20,
                |x, _| if x < 20 { image::Rgb([20, 20, 20]) } else { image::Rgb([230, 230, 230]) },
            );
        let mut tagged = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut tagged, 90);
        let tiff = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        enc.add_exif_metadata(tiff).unwrap();
        enc.encode(img.as_raw(), 40, 20, jpeg_encoder::ColorType::Rgb).unwrap();
        assert!(markers(&tagged).iter().any(|(m, d)| *m == 0xE1 && d.starts_with(b"Exif")));

        let j = UploadJpeg::from_operator_bytes(&tagged, &EncodeConfig::default()).unwrap();
        assert_eq!((j.width(), j.height()), (20, 40), "upright");
        assert!(markers(j.bytes()).iter().all(|(m, _)| *m != 0xE1), "exif dropped");
        // Rotated clockwise: the dark left half is now the top.
        let up = image::load_from_memory(j.bytes()).unwrap().into_luma8();
        assert!(up.get_pixel(10, 5).0[0] < 80 && up.get_pixel(10, 35).0[0] > 180);
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn reencode_smaller_shrinks_and_keeps_the_origin() {
        let img = photo(1600, 900);
        let j = encode_rgb(&img, &EncodeConfig::default(), Origin::CheckedCapture).unwrap();
        let target = j.bytes().len() / 3;
        let s = reencode_smaller(&j, target).unwrap();
        assert!(s.bytes().len() <= target);
        assert_eq!(s.origin(), Origin::CheckedCapture);
        image::load_from_memory(s.bytes()).unwrap();
        assert!(matches!(reencode_smaller(&j, 0), Err(EncodeError::CannotFit { .. })));
    }

    #[test]
    fn document_sides_are_fitted_to_the_summed_limit() {
        let c = EncodeConfig::default();
        let sides: Vec<UploadJpeg> = [(1600, 1000), (1200, 760)]
            .iter()
            .map(|&(w, h)| encode_rgb(&photo(w, h), &c, Origin::CheckedCapture).unwrap())
            .collect();
        let total: usize = sides.iter().map(UploadJpeg::base64_len).sum();
        assert!(document_sides_fit(&sides.iter().collect::<Vec<_>>()));
        // Unchanged when they fit.
        let same = fit_document_sides(sides.clone(), total).unwrap();
        assert_eq!(same, sides);
        // A limit of half the total forces re-encoding.
        let fitted = fit_document_sides(sides, total / 2).unwrap();
        assert!(fitted.iter().map(UploadJpeg::base64_len).sum::<usize>() <= total / 2);
        assert!(fitted.iter().all(|s| image::load_from_memory(s.bytes()).is_ok()));
    }

    #[test]
    fn config_validation_names_the_key() {
        EncodeConfig::default().validate().unwrap();
        for (c, key) in [
            (EncodeConfig { quality: 0, ..Default::default() }, "encode.quality"),
            (EncodeConfig { min_quality: 95, ..Default::default() }, "encode.min_quality"),
            (EncodeConfig { max_dimension: 10, ..Default::default() }, "encode.max_dimension"),
            (EncodeConfig { max_bytes: 5, ..Default::default() }, "encode.max_bytes"),
        ] {
            assert!(c.validate().unwrap_err().starts_with(key));
        }
    }
}
