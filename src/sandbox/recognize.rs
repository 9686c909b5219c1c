//! Deterministic document recognition and face matching on the real image content, for the sandbox. Runs on a
//! sandbox worker thread; a [`Recognizer`] owns a [`FaceDetector`], which is not `Send`, so each worker builds its
//! own. The rules are in [`RULES_MARKDOWN`] (quoted by the README).

use crate::capture::face::{DetectorSettings, FaceBox, FaceDetector, FaceError};
use image::{GrayImage, ImageFormat, ImageReader, imageops};
use std::io::Cursor;

/// Side of the normalised portrait crop, pixels.
pub const CROP_SIDE: u32 = 64;
/// Plausible image sizes: the smaller side at least this many pixels...
pub const MIN_SHORT_SIDE: u32 = 250;
/// ...the longer side at least this many...
pub const MIN_LONG_SIDE: u32 = 400;
/// ...and no side longer than this.
pub const MAX_SIDE: u32 = 8000;
/// Accepted aspect ratio (width / height) of a document front.
pub const CARD_ASPECT: (f64, f64) = (1.3, 1.9);
/// Accepted height of the document portrait's face box, as a share of the card height.
pub const PORTRAIT_SHARE: (f64, f64) = (0.12, 0.60);
/// Images are scaled down so their shorter side is at most this many pixels before faces are searched.
const ANALYSIS_SHORT_SIDE: u32 = 480;
/// Smallest face searched for at analysis size (a twelfth of the shorter side).
const MIN_FACE: u32 = 40;
/// Decoder memory cap (an 8000 x 8000 RGB image is 192 MB; decoding needs some more).
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Largest shift (pixels of the 64 px crop) tried when aligning two portraits.
const MAX_SHIFT: i32 = 3;

/// The rules, as the README quotes them.
pub const RULES_MARKDOWN: &str = r##"### How the sandbox decides

The sandbox does no OCR and no real biometrics, but its answers follow fixed rules on the real image content, so the
same images always get the same answer:

- **Image data.** A base64 image (raw, or with a `data:image/...;base64,` prefix) must decode to PNG or JPEG bytes
  (magic bytes, a JPEG that is not cut short, then a full decode); otherwise: `invalid base64 front image provided`. A URL is never fetched: a
  URL alone is answered `invalid document (front, side, back) image provided` (document) or
  `invalid face image provided` (face).
- **Plausible size.** The shorter side at least 250 px, the longer at least 400 px, no side above 8000 px.
- **Document front recognised** when it has a plausible size, a card-like landscape aspect ratio (width / height
  1.3 to 1.9; an ID-1 card is 1.586), and exactly one frontal face (the SeetaFace detector) whose box is 12% to 60%
  of the card's height, centred in the left half of the card (the ICAO 9303 layout). Back and side images only need
  to decode at a plausible size. Anything else: `The document supplied is not recognized!`.
- **Identity data.** Every recognised front returns the same made-up SANDBOXIA identity (the one printed on the demo
  card), whatever the card says.
- **Faces** are searched with the SeetaFace frontal detector on the image scaled to at most 480 px on its shorter
  side; faces under 40 px at that scale (about a twelfth of the shorter side) are not looked for.
- **Face match.** The largest frontal face found in the selfie and the document portrait are each cropped to their
  face box, scaled to 64 x 64 grey and histogram-equalised; the similarity is the best Pearson correlation of the
  two crops over shifts of up to 3 px, clamped to 0..1, and is returned as `score`. It matches when the score is
  at least `sandbox.face_match_threshold`. No frontal face in the selfie, or a lower score:
  `Face match verification FAILED!`.
- **Liveness** (only with `sandbox.liveness_enabled`): the clip must be base64 with a `data:video/...;base64,`
  prefix and be an AVI, MP4 or MOV container (`invalid base64 video provided` otherwise). Only MJPEG AVI clips (what
  the kiosk records) can be analysed: it passes when at least 3 of its JPEG frames decode, a frontal face is found
  in at least half of the (up to 8) frames sampled, the first and last sampled frames differ (a mean difference above
  1 grey level: the person moved) and a face matches the document portrait as above. Anything else: `:liveliness verification FAILED!`.
- **Requests.** E4 needs a known document id (`There is no document identification data with the provided id!`
  otherwise), a valid email and phone (our 400s: `{"error": "invalid email address provided"}`,
  `{"error": "invalid phone number provided"}`), and an email (case-insensitive) and phone (its digits) that no
  stored request uses: a 409 `{"error": "a kyc request with this email already exists"}` or
  `{"error": "a kyc request with this phone number already exists"}` (the vendor's 409 text is unknown). A new
  request reads `isValidated: false` until `sandbox.validation_delay` has passed (the email OTP and phone call,
  simulated); E5 refuses it until then (`{"message": "Kyc request not accepted"}`, as for an unknown id) and is
  idempotent after. E7 and E9 answer an unknown id with 404 `{"error": "request not found"}` (our decision). E6
  without `accepted` lists every request. Deleting a request frees its email and phone.
- **Limits.** Base64 text above 30,000,000 bytes (summed over a document's sides; one face image) is answered 413
  `Request Entity Too Large` (text/plain). A `Content-Length` above the limit plus 64 KiB is refused before any of the
  body is read; a chunked body is cut off as soon as it passes that.
- **Restarts.** `ekyc-kiosk sandbox` and the embedded sandbox keep their requests in `sandbox-state.json` in the
  data directory, so an operator's training data survives a restart. Documents (their 64 x 64 portrait crops) are
  biometric and live in memory only: after a restart an old document id is unknown, and the client uploads the
  document again.
"##;

/// Why an image was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not PNG or JPEG, or it does not decode.
    NotAnImage,
    /// It decodes but breaks a recognition rule (size, shape, portrait).
    NotRecognized,
    /// No frontal face, or (for a match) a different one.
    NoFace,
}

/// A normalised portrait crop: 64 x 64 grey, histogram-equalised. Kept per document id; never the whole image.
/// Its `Debug` shows no pixels (biometric data stays out of logs and panics).
#[derive(Clone, PartialEq, Eq)]
pub struct Portrait {
    pixels: Vec<u8>,
}

impl std::fmt::Debug for Portrait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Portrait({CROP_SIDE}x{CROP_SIDE}, <biometric>)")
    }
}

impl Portrait {
    /// Rebuilds a crop from its raw pixels (64 x 64 grey), e.g. from the state file.
    pub fn from_raw(pixels: Vec<u8>) -> Option<Portrait> {
        (pixels.len() == (CROP_SIDE * CROP_SIDE) as usize).then_some(Portrait { pixels })
    }

    /// The raw pixels, row-major.
    pub fn as_raw(&self) -> &[u8] {
        &self.pixels
    }

    /// Similarity in 0..1: the best Pearson correlation of the two crops over small shifts.
    pub fn similarity(&self, other: &Portrait) -> f64 {
        let n = CROP_SIDE as i32;
        let mut best = 0.0f64;
        for dy in -MAX_SHIFT..=MAX_SHIFT {
            for dx in -MAX_SHIFT..=MAX_SHIFT {
                let (mut sa, mut sb, mut saa, mut sbb, mut sab, mut count) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
                for y in MAX_SHIFT..n - MAX_SHIFT {
                    for x in MAX_SHIFT..n - MAX_SHIFT {
                        let a = self.pixels[(y * n + x) as usize] as f64;
                        let b = other.pixels[((y + dy) * n + x + dx) as usize] as f64;
                        sa += a;
                        sb += b;
                        saa += a * a;
                        sbb += b * b;
                        sab += a * b;
                        count += 1.0;
                    }
                }
                let cov = sab - sa * sb / count;
                let va = saa - sa * sa / count;
                let vb = sbb - sb * sb / count;
                if va > 0.0 && vb > 0.0 {
                    best = best.max(cov / (va * vb).sqrt());
                }
            }
        }
        best.clamp(0.0, 1.0)
    }
}

/// A decoded image at analysis size.
struct Analysed {
    /// Original size.
    width: u32,
    height: u32,
    /// Grey, scaled so the shorter side is at most `ANALYSIS_SHORT_SIDE`.
    gray: GrayImage,
}

/// Recognition for one worker thread.
#[derive(Debug)]
pub struct Recognizer {
    detector: FaceDetector,
}

impl Recognizer {
    /// Builds the recognizer (and its face detector).
    pub fn new() -> Result<Recognizer, FaceError> {
        let detector = FaceDetector::new(DetectorSettings { min_face: MIN_FACE, ..DetectorSettings::default() })?;
        Ok(Recognizer { detector })
    }

    /// Checks a document front; on success returns the portrait crop.
    pub fn document_front(&mut self, bytes: &[u8]) -> Result<Portrait, Refusal> {
        let img = analyse(bytes)?;
        let (w, h) = (img.width, img.height);
        let aspect = w as f64 / h as f64;
        if !plausible(w, h) || aspect < CARD_ASPECT.0 || aspect > CARD_ASPECT.1 {
            return Err(Refusal::NotRecognized);
        }
        let faces = self.detector.detect(&img.gray);
        let [face] = faces.as_slice() else { return Err(Refusal::NotRecognized) };
        let (gw, gh) = img.gray.dimensions();
        let share = face.height as f64 / gh as f64;
        let (cx, _) = face.center();
        if share < PORTRAIT_SHARE.0 || share > PORTRAIT_SHARE.1 || cx >= gw as f64 / 2.0 {
            return Err(Refusal::NotRecognized);
        }
        Ok(crop(&img.gray, face))
    }

    /// Checks a document back or side: it decodes at a plausible size.
    pub fn document_other(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let (w, h) = dimensions(bytes)?;
        if !plausible(w, h) {
            return Err(Refusal::NotRecognized);
        }
        // A full decode: a truncated or corrupt file is not an image.
        decode(bytes).map(|_| ())
    }

    /// Finds the largest frontal face in a selfie and returns its crop. An image that decodes but holds no frontal
    /// face is [`Refusal::NoFace`].
    pub fn face(&mut self, bytes: &[u8]) -> Result<Portrait, Refusal> {
        let img = analyse(bytes)?;
        self.face_in(&img.gray)
    }

    /// The largest frontal face in a grey image, as a crop.
    pub fn face_in(&mut self, gray: &GrayImage) -> Result<Portrait, Refusal> {
        let faces = self.detector.detect(gray);
        faces.first().map(|f| crop(gray, f)).ok_or(Refusal::NoFace)
    }

    /// Number of frontal faces in an image (for tests and the demo-asset checks).
    pub fn count_faces(&mut self, bytes: &[u8]) -> Result<usize, Refusal> {
        let img = analyse(bytes)?;
        Ok(self.detector.detect(&img.gray).len())
    }
}

/// A video container the sandbox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// RIFF AVI (what the kiosk records: MJPEG).
    Avi,
    /// ISO base media (MP4, MOV).
    IsoMedia,
}

/// Recognises AVI, MP4 and MOV by their first bytes.
pub fn sniff_video(bytes: &[u8]) -> Option<Container> {
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"AVI " {
        Some(Container::Avi)
    } else if bytes.len() >= 12 && matches!(&bytes[4..8], b"ftyp" | b"moov" | b"mdat" | b"wide" | b"free") {
        Some(Container::IsoMedia)
    } else {
        None
    }
}

/// Most JPEG frames looked for in a clip, and most sampled.
const MAX_FRAMES: usize = 2000;
const SAMPLED_FRAMES: usize = 8;

/// The JPEG frames of an MJPEG stream: byte ranges from a start-of-image marker to the next end-of-image marker.
fn jpeg_frames(clip: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut i = 0;
    while i + 3 <= clip.len() && frames.len() < MAX_FRAMES {
        let Some(start) = clip[i..].windows(3).position(|w| w == [0xFF, 0xD8, 0xFF]).map(|p| p + i) else { break };
        let Some(end) = clip[start + 2..].windows(2).position(|w| w == [0xFF, 0xD9]).map(|p| p + start + 4) else {
            break;
        };
        frames.push(&clip[start..end]);
        i = end;
    }
    frames
}

/// The liveness rule (see [`RULES_MARKDOWN`]).
pub fn liveness(rec: &mut Recognizer, clip: &[u8], container: Container, portrait: &Portrait, threshold: f64) -> bool {
    if container != Container::Avi {
        return false;
    }
    let frames = jpeg_frames(clip);
    if frames.len() < 3 {
        return false;
    }
    let n = frames.len().min(SAMPLED_FRAMES);
    let picks: Vec<&[u8]> = (0..n).map(|k| frames[k * (frames.len() - 1) / (n - 1).max(1)]).collect();
    let mut decoded = Vec::new();
    for f in picks {
        if let Ok(img) = analyse(f) {
            decoded.push(img.gray);
        }
    }
    if decoded.len() < 3 {
        return false;
    }
    let mut with_face = 0;
    let mut best = 0.0f64;
    for g in &decoded {
        if let Ok(p) = rec.face_in(g) {
            with_face += 1;
            best = best.max(portrait.similarity(&p));
        }
    }
    let small = |g: &GrayImage| imageops::resize(g, 64, 64, imageops::FilterType::Triangle);
    let (first, last) = (small(&decoded[0]), small(&decoded[decoded.len() - 1]));
    let motion = first.as_raw().iter().zip(last.as_raw()).map(|(a, b)| (*a as f64 - *b as f64).abs()).sum::<f64>()
        / first.as_raw().len() as f64;
    with_face * 2 >= decoded.len() && motion > 1.0 && best >= threshold
}

fn plausible(w: u32, h: u32) -> bool {
    w.min(h) >= MIN_SHORT_SIDE && w.max(h) >= MIN_LONG_SIDE && w.max(h) <= MAX_SIDE
}

/// Whether the bytes start like PNG or JPEG.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, Refusal> {
    let format = sniff(bytes).ok_or(Refusal::NotAnImage)?;
    let mut r = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    r.limits(limits);
    Ok(r)
}

/// The image's size from its header alone.
fn dimensions(bytes: &[u8]) -> Result<(u32, u32), Refusal> {
    let format = sniff(bytes).ok_or(Refusal::NotAnImage)?;
    ImageReader::with_format(Cursor::new(bytes), format).into_dimensions().map_err(|_| Refusal::NotAnImage)
}

fn decode(bytes: &[u8]) -> Result<image::DynamicImage, Refusal> {
    let (w, h) = dimensions(bytes)?;
    if w.max(h) > MAX_SIDE {
        // A real image, but not a plausible photo of a document or a face.
        return Err(Refusal::NotRecognized);
    }
    if sniff(bytes) == Some(ImageFormat::Jpeg) && !jpeg_complete(bytes) {
        // The JPEG decoder fills a truncated scan with grey; a file cut short is not an image.
        return Err(Refusal::NotAnImage);
    }
    reader(bytes)?.decode().map_err(|_| Refusal::NotAnImage)
}

/// Whether a JPEG ends with its end-of-image marker (trailing zero padding allowed).
fn jpeg_complete(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xFF, 0xD9])
}

fn analyse(bytes: &[u8]) -> Result<Analysed, Refusal> {
    let img = decode(bytes)?;
    let (width, height) = (img.width(), img.height());
    let gray = img.to_luma8();
    drop(img);
    let gray = if width.min(height) > ANALYSIS_SHORT_SIDE {
        let s = ANALYSIS_SHORT_SIDE as f64 / width.min(height) as f64;
        let nw = ((width as f64 * s).round() as u32).max(1);
        let nh = ((height as f64 * s).round() as u32).max(1);
        imageops::resize(&gray, nw, nh, imageops::FilterType::Triangle)
    } else {
        gray
    };
    Ok(Analysed { width, height, gray })
}

/// Crops the face box (clamped to the image), scales it to 64 x 64 and equalises its histogram.
fn crop(gray: &GrayImage, face: &FaceBox) -> Portrait {
    let (w, h) = gray.dimensions();
    let x0 = face.x.clamp(0, w as i32 - 1) as u32;
    let y0 = face.y.clamp(0, h as i32 - 1) as u32;
    let x1 = ((face.x + face.width as i32).clamp(1, w as i32) as u32).max(x0 + 1);
    let y1 = ((face.y + face.height as i32).clamp(1, h as i32) as u32).max(y0 + 1);
    let sub = imageops::crop_imm(gray, x0, y0, x1 - x0, y1 - y0).to_image();
    let small = imageops::resize(&sub, CROP_SIDE, CROP_SIDE, imageops::FilterType::Triangle);
    Portrait { pixels: equalise(small.as_raw()) }
}

/// Histogram equalisation of 8-bit grey pixels.
fn equalise(px: &[u8]) -> Vec<u8> {
    let mut hist = [0u32; 256];
    for &p in px {
        hist[p as usize] += 1;
    }
    let mut cdf = [0u32; 256];
    let mut acc = 0;
    for (i, h) in hist.iter().enumerate() {
        acc += h;
        cdf[i] = acc;
    }
    let total = px.len() as u32;
    let min = cdf.iter().copied().find(|&c| c > 0).unwrap_or(0);
    if total <= min {
        return px.to_vec();
    }
    px.iter().map(|&p| (((cdf[p as usize] - min) as f64 * 255.0) / (total - min) as f64).round() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_knows_png_and_jpeg_only() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn similarity_of_a_crop_with_itself_is_one_and_flat_is_zero() {
        let a = Portrait { pixels: (0..4096u32).map(|i| ((i * 7919) % 251) as u8).collect() };
        assert!((a.similarity(&a) - 1.0).abs() < 1e-9);
        let flat = Portrait { pixels: vec![128; 4096] };
        assert_eq!(a.similarity(&flat), 0.0);
        assert!(Portrait::from_raw(vec![0; 10]).is_none());
    }

    #[test]
    fn equalise_spreads_a_narrow_range() {
        let px: Vec<u8> = (0..256).map(|i| 100 + (i % 10) as u8).collect();
        let e = equalise(&px);
        assert_eq!(*e.iter().min().unwrap(), 0);
        assert_eq!(*e.iter().max().unwrap(), 255);
    }
}
