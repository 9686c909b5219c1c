//! The bundled demo frames, used when no camera is found and no replay is configured; the product marks itself
//! DEMO while they run. A portrait (public domain, see `assets/demo/frames/PROVENANCE.md`) drifts into the centre
//! of a plain background and comes into focus over two seconds, then holds still for four, and the cycle repeats,
//! so auto-capture has something real to do. Frames are made at run time on the camera thread.

use super::{CameraConfig, CameraError, Frame, FrameSource, mjpeg::decode_mjpeg};
use image::{Rgb, RgbImage};
use std::time::{Duration, Instant};

/// The portrait, embedded so the binary is self-contained.
static PORTRAIT_JPEG: &[u8] = include_bytes!("../../assets/demo/frames/portrait.jpg");

/// Seconds the portrait takes to drift in and come into focus.
const DRIFT_SECS: u32 = 2;
/// Seconds it then holds still, sharp and centred.
const HOLD_SECS: u32 = 4;
/// Distinct looks during the drift (each is shown for a few frames, as a slow camera would).
const STEPS: u32 = 10;
/// Where the face is in the bundled portrait (and in `tests/fixtures/astronaut.png`, the same picture), as
/// fractions of its width and height: the point the approach brings to the centre of the frame.
pub const PORTRAIT_FACE_CENTRE: (f64, f64) = (0.435, 0.225);
/// The face's width as a fraction of the portrait's width (the detector's box).
pub const PORTRAIT_FACE_WIDTH: f64 = 0.21;
/// Share of the frame height the face takes once centred, as for a person at arm's length from the kiosk.
const FACE_SHARE: f64 = 0.30;
/// Background grey.
const BACKGROUND: Rgb<u8> = Rgb([118, 121, 126]);

/// The demo frame generator; see the module header.
pub struct DemoSource {
    portrait: RgbImage,
    width: u32,
    height: u32,
    interval: Duration,
    fps: u32,
    index: u64,
    next_due: Option<Instant>,
    cached: Option<(u32, RgbImage)>,
    /// False only in tests, which step through a cycle without waiting for it.
    paced: bool,
}

impl DemoSource {
    /// Demo frames at the configured size (clamped to 320x240..1920x1080) and frame rate.
    pub fn new(config: &CameraConfig) -> Result<Self, CameraError> {
        let fps = config.fps.clamp(1, 60);
        let width = config.width.clamp(320, 1920) & !1;
        let height = config.height.clamp(240, 1080) & !1;
        let portrait = decode_mjpeg(PORTRAIT_JPEG)
            .map_err(|e| CameraError::Config(format!("bundled demo portrait does not decode: {e}")))?;
        let side = ((f64::from(height) * FACE_SHARE / PORTRAIT_FACE_WIDTH) as u32).max(16);
        let portrait = image::imageops::resize(&portrait, side, side, image::imageops::FilterType::Triangle);
        Ok(DemoSource {
            portrait,
            width,
            height,
            interval: Duration::from_secs(1) / fps,
            fps,
            index: 0,
            next_due: None,
            cached: None,
            paced: true,
        })
    }

    /// Frames in one cycle (drift then hold).
    pub fn cycle_len(&self) -> u64 {
        u64::from((DRIFT_SECS + HOLD_SECS) * self.fps)
    }

    /// Which look frame `index` shows: 0 (far off, blurred) to `STEPS` (centred, sharp).
    fn step(&self, index: u64) -> u32 {
        let in_cycle = index % self.cycle_len();
        let drift = u64::from(DRIFT_SECS * self.fps);
        if in_cycle >= drift {
            return STEPS;
        }
        (in_cycle * u64::from(STEPS) / drift) as u32
    }

    fn render(&self, step: u32) -> RgbImage {
        let progress = f64::from(step) / f64::from(STEPS);
        approach_frame(&self.portrait, PORTRAIT_FACE_CENTRE, self.width, self.height, progress)
    }
}

/// One frame of a person approaching the kiosk: `portrait` (used at its own size) on a plain background of
/// `width` x `height`, `progress` 0.0 (off to the right and below, strongly blurred) to 1.0 (the point `face` of the
/// portrait, in fractions of its width and height, at the centre of the frame, sharp). Used by the demo source and
/// by tests that script a capture ([`super::replay::approach_sequence`]).
pub fn approach_frame(portrait: &RgbImage, face: (f64, f64), width: u32, height: u32, progress: f64) -> RgbImage {
    let remaining = 1.0 - progress.clamp(0.0, 1.0);
    let mut frame = RgbImage::from_pixel(width, height, BACKGROUND);
    let (pw, ph) = portrait.dimensions();
    let cx = f64::from(width) / 2.0 + remaining * f64::from(width) * 0.30;
    let cy = f64::from(height) / 2.0 + remaining * f64::from(height) * 0.12;
    let x = (cx - f64::from(pw) * face.0).round() as i64;
    let y = (cy - f64::from(ph) * face.1).round() as i64;
    let sigma = (remaining * 9.0) as f32;
    if sigma >= 0.5 {
        let blurred = image::imageops::fast_blur(portrait, sigma);
        image::imageops::replace(&mut frame, &blurred, x, y);
    } else {
        image::imageops::replace(&mut frame, portrait, x, y);
    }
    frame
}

impl FrameSource for DemoSource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        if let Some(due) = self.next_due.filter(|_| self.paced) {
            let now = Instant::now();
            if due > now + timeout {
                std::thread::sleep(timeout);
                return Err(CameraError::Timeout(timeout));
            }
            std::thread::sleep(due.saturating_duration_since(now));
        }
        let step = self.step(self.index);
        let image = match &self.cached {
            Some((s, img)) if *s == step => img.clone(),
            _ => {
                let img = self.render(step);
                self.cached = Some((step, img.clone()));
                img
            }
        };
        let now = Instant::now();
        let base = match self.next_due {
            Some(due) if due + self.interval >= now => due,
            _ => now,
        };
        self.next_due = Some(base + self.interval);
        self.index += 1;
        Ok(Frame { image, seq: self.index, captured_at: now })
    }

    fn describe(&self) -> String {
        format!("DEMO (bundled frames, {}x{} at {} fps)", self.width, self.height, self.fps)
    }

    fn is_demo(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sharpness(img: &RgbImage) -> f64 {
        // Mean absolute horizontal gradient of the green channel: higher is sharper.
        let mut sum = 0u64;
        for y in 0..img.height() {
            for x in 1..img.width() {
                sum += u64::from(img.get_pixel(x, y).0[1].abs_diff(img.get_pixel(x - 1, y).0[1]));
            }
        }
        sum as f64 / f64::from(img.width() * img.height())
    }

    /// The one face the detector finds: (centre x, centre y, width), or None.
    fn face(img: &RgbImage) -> Option<(f64, f64, u32)> {
        use crate::capture::face::{DetectorSettings, FaceDetector};
        let mut d = FaceDetector::new(DetectorSettings::default()).unwrap();
        let faces = d.detect(&image::imageops::grayscale(img));
        match faces.as_slice() {
            [f] => Some((f.center().0, f.center().1, f.width)),
            _ => None,
        }
    }

    #[test]
    fn the_portrait_drifts_in_comes_into_focus_and_holds() {
        let config = CameraConfig { width: 320, height: 240, fps: 10, ..CameraConfig::default() };
        let mut demo = DemoSource::new(&config).unwrap();
        demo.paced = false;
        assert!(demo.is_demo() && demo.describe().contains("DEMO"));
        let frames: Vec<RgbImage> =
            (0..demo.cycle_len()).map(|_| demo.next_frame(Duration::from_secs(1)).unwrap().image).collect();
        let first = &frames[0];
        let held = &frames[(DRIFT_SECS * 10) as usize + 5];
        assert!(sharpness(held) > sharpness(first) * 1.5, "{} vs {}", sharpness(held), sharpness(first));
        // Held: one face, centred, about a third of the frame height.
        let (x, y, w) = face(held).expect("one face in the held frame");
        assert!((x - 160.0).abs() < 12.0 && (y - 120.0).abs() < 12.0, "centred: {x},{y}");
        assert!((60..=110).contains(&w), "face width {w}");
        // First: blurred and off to the side (if the detector finds it at all).
        if let Some((x, _, _)) = face(first) {
            assert!(x > 200.0, "first frame is off-centre: {x}");
        }
        // The last frames of the cycle hold still.
        assert_eq!(frames[frames.len() - 1], frames[frames.len() - 2]);
        // And the next cycle starts again off-centre.
        let again = demo.next_frame(Duration::from_secs(1)).unwrap().image;
        assert_eq!(&again, first);
    }
}
