//! The bundled demo frames, used in demo mode (see `crate::config::RunMode`) when no camera is found, or when
//! `camera.source = demo` asks for them; the product marks itself DEMO while they run. The demo camera shows what
//! the screen in front of it asks for ([`Scene`], set by the capture thread through a [`DemoScene`]): the bundled
//! demo ID card's front, then its back, on a desk, and for the face step a portrait (public domain, see
//! `assets/demo/frames/PROVENANCE.md`; the same person as on the card, so the sandbox's face match passes) on a
//! plain background. Each drifts into the centre and comes into focus over two seconds, then holds still (until
//! another scene is asked for, which drifts in again, or the camera is opened again), so auto-capture has something
//! real to do. Frames
//! are made at run time on the camera thread.

use super::{CameraConfig, CameraError, Frame, FrameSource, mjpeg::decode_mjpeg};
use image::{Rgb, RgbImage};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// The portrait, embedded so the binary is self-contained.
static PORTRAIT_JPEG: &[u8] = include_bytes!("../../assets/demo/frames/portrait.jpg");
/// The demo ID card (`assets/demo/PROVENANCE.md`), front and back.
static CARD_FRONT_JPEG: &[u8] = include_bytes!("../../assets/demo/id-front.jpg");
static CARD_BACK_JPEG: &[u8] = include_bytes!("../../assets/demo/id-back.jpg");
/// The card's width as a share of the frame width once it is held in place: it fills the document guide
/// (`capture.document.guide_width`), as a customer holding it at the distance the guide asks for would. At 0.74 the
/// card's portrait was 12.1 % of the frame height, at the edge of what the sandbox accepts as a card's portrait.
const CARD_SHARE: f64 = 0.80;

/// What the demo camera shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scene {
    /// The portrait (the face step, and the operator's camera page).
    #[default]
    Face,
    /// The demo ID card's front.
    DocumentFront,
    /// The demo ID card's back.
    DocumentBack,
}

impl Scene {
    fn to_u8(self) -> u8 {
        match self {
            Scene::Face => 0,
            Scene::DocumentFront => 1,
            Scene::DocumentBack => 2,
        }
    }

    fn from_u8(v: u8) -> Scene {
        match v {
            1 => Scene::DocumentFront,
            2 => Scene::DocumentBack,
            _ => Scene::Face,
        }
    }
}

/// The scene shared between whoever knows which screen is shown (the capture thread) and the demo source on the
/// camera thread. Cheap to clone; a real camera ignores it.
#[derive(Debug, Clone, Default)]
pub struct DemoScene(Arc<AtomicU8>);

impl DemoScene {
    /// A handle showing `scene`.
    pub fn new(scene: Scene) -> DemoScene {
        DemoScene(Arc::new(AtomicU8::new(scene.to_u8())))
    }

    /// Shows `scene` from the next frame on.
    pub fn set(&self, scene: Scene) {
        self.0.store(scene.to_u8(), Ordering::Relaxed);
    }

    /// The scene shown.
    pub fn get(&self) -> Scene {
        Scene::from_u8(self.0.load(Ordering::Relaxed))
    }
}

/// Seconds the portrait takes to drift in and come into focus.
const DRIFT_SECS: u32 = 2;
/// Seconds of holding still, sharp and centred, that [`DemoSource::cycle_len`] counts (it then goes on holding
/// until another scene is asked for or the camera is opened again: a slow machine's checks always get enough
/// still frames for the auto-capture).
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
    card_front: RgbImage,
    card_back: RgbImage,
    /// The desk the card lies on (made once: it is the same in every frame).
    desk: RgbImage,
    width: u32,
    height: u32,
    interval: Duration,
    fps: u32,
    /// Frames served so far.
    index: u64,
    /// The frame index the current scene's cycle started at.
    cycle_start: u64,
    /// What is asked for, and what the cycle in progress shows.
    scene: DemoScene,
    shown: Scene,
    next_due: Option<Instant>,
    cached: Option<(Scene, u32, RgbImage)>,
    /// False only in tests, which step through a cycle without waiting for it.
    paced: bool,
}

impl DemoSource {
    /// Demo frames at the configured size (clamped to 320x240..1920x1080) and frame rate, showing the portrait.
    pub fn new(config: &CameraConfig) -> Result<Self, CameraError> {
        DemoSource::with_scene(config, DemoScene::default())
    }

    /// Demo frames showing whatever `scene` asks for.
    pub fn with_scene(config: &CameraConfig, scene: DemoScene) -> Result<Self, CameraError> {
        let fps = config.fps.clamp(1, 60);
        let width = config.width.clamp(320, 1920) & !1;
        let height = config.height.clamp(240, 1080) & !1;
        let decode = |bytes: &[u8], what: &str| {
            decode_mjpeg(bytes).map_err(|e| CameraError::Config(format!("bundled demo {what} does not decode: {e}")))
        };
        let portrait = decode(PORTRAIT_JPEG, "portrait")?;
        let side = ((f64::from(height) * FACE_SHARE / PORTRAIT_FACE_WIDTH) as u32).max(16);
        let portrait = image::imageops::resize(&portrait, side, side, image::imageops::FilterType::Triangle);
        let card_w = ((f64::from(width) * CARD_SHARE) as u32).max(16);
        let card = |bytes: &[u8], what: &str| -> Result<RgbImage, CameraError> {
            let img = decode(bytes, what)?;
            let h = (u64::from(card_w) * u64::from(img.height()) / u64::from(img.width().max(1))).max(1) as u32;
            Ok(image::imageops::resize(&img, card_w, h, image::imageops::FilterType::Triangle))
        };
        let shown = scene.get();
        Ok(DemoSource {
            portrait,
            card_front: card(CARD_FRONT_JPEG, "card front")?,
            card_back: card(CARD_BACK_JPEG, "card back")?,
            desk: desk(width, height),
            width,
            height,
            interval: Duration::from_secs(1) / fps,
            fps,
            index: 0,
            cycle_start: 0,
            scene,
            shown,
            next_due: None,
            cached: None,
            paced: true,
        })
    }

    /// Frames of the drift plus the first [`HOLD_SECS`] of holding still.
    pub fn cycle_len(&self) -> u64 {
        u64::from((DRIFT_SECS + HOLD_SECS) * self.fps)
    }

    /// Which look frame `index` shows: 0 (far off, blurred) to `STEPS` (centred, sharp).
    fn step(&self, index: u64) -> u32 {
        let in_cycle = index.saturating_sub(self.cycle_start);
        let drift = u64::from(DRIFT_SECS * self.fps);
        if in_cycle >= drift {
            return STEPS;
        }
        (in_cycle * u64::from(STEPS) / drift) as u32
    }

    fn render(&self, scene: Scene, step: u32) -> RgbImage {
        let progress = f64::from(step) / f64::from(STEPS);
        match scene {
            Scene::Face => approach_frame(&self.portrait, PORTRAIT_FACE_CENTRE, self.width, self.height, progress),
            Scene::DocumentFront => approach_on(self.desk.clone(), &self.card_front, (0.5, 0.5), progress),
            Scene::DocumentBack => approach_on(self.desk.clone(), &self.card_back, (0.5, 0.5), progress),
        }
    }
}

/// One frame of a person approaching the kiosk: `portrait` (used at its own size) on a plain background of
/// `width` x `height`, `progress` 0.0 (off to the right and below, strongly blurred) to 1.0 (the point `face` of the
/// portrait, in fractions of its width and height, at the centre of the frame, sharp). Used by the demo source and
/// by tests that script a capture ([`super::replay::approach_sequence`]).
pub fn approach_frame(portrait: &RgbImage, face: (f64, f64), width: u32, height: u32, progress: f64) -> RgbImage {
    approach_on(RgbImage::from_pixel(width, height, BACKGROUND), portrait, face, progress)
}

/// `subject` (at its own size) laid on `frame`, drifting in as [`approach_frame`] describes: the point `anchor` of
/// the subject (fractions of its width and height) reaches the frame's centre at `progress` 1.0.
fn approach_on(mut frame: RgbImage, subject: &RgbImage, anchor: (f64, f64), progress: f64) -> RgbImage {
    let remaining = 1.0 - progress.clamp(0.0, 1.0);
    let (width, height) = frame.dimensions();
    let (pw, ph) = subject.dimensions();
    let cx = f64::from(width) / 2.0 + remaining * f64::from(width) * 0.30;
    let cy = f64::from(height) / 2.0 + remaining * f64::from(height) * 0.12;
    let x = (cx - f64::from(pw) * anchor.0).round() as i64;
    let y = (cy - f64::from(ph) * anchor.1).round() as i64;
    let sigma = (remaining * 9.0) as f32;
    if sigma >= 0.5 {
        let blurred = image::imageops::fast_blur(subject, sigma);
        image::imageops::replace(&mut frame, &blurred, x, y);
    } else {
        image::imageops::replace(&mut frame, subject, x, y);
    }
    frame
}

/// A dark wooden desk: brown, with a faint grain and noise, so the light card's edges stand out as on a real
/// counter. Deterministic.
fn desk(width: u32, height: u32) -> RgbImage {
    let mut seed: u32 = 0x5eed;
    RgbImage::from_fn(width, height, |x, y| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let noise = ((seed >> 16) % 13) as i32 - 6;
        let grain = ((x / 9 + y / 4) % 11) as i32;
        let v = 72 + grain + noise;
        Rgb([v as u8, (v - 12).max(0) as u8, (v - 26).max(0) as u8])
    })
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
        let asked = self.scene.get();
        if asked != self.shown {
            // A new subject is brought to the camera: it drifts in again.
            self.shown = asked;
            self.cycle_start = self.index;
        }
        let step = self.step(self.index);
        let image = match &self.cached {
            Some((sc, s, img)) if *sc == asked && *s == step => img.clone(),
            _ => {
                let img = self.render(asked, step);
                self.cached = Some((asked, step, img.clone()));
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
        // The last frames hold still, and so does every frame after them: a slow check always gets its run of
        // still frames.
        assert_eq!(frames[frames.len() - 1], frames[frames.len() - 2]);
        for _ in 0..demo.cycle_len() {
            assert_eq!(&demo.next_frame(Duration::from_secs(1)).unwrap().image, held);
        }
    }

    /// Whatever frame of the front's cycle the kiosk's checks accept (auto-capture may take one still drifting in),
    /// the sandbox recognises it as a card front with its portrait: a demo never ends on "document not recognised".
    #[test]
    fn every_accepted_front_frame_is_recognised_by_the_sandbox() {
        use crate::capture::{CaptureConfig, Mode, QualityChecker};
        use crate::encode::{EncodeConfig, encode_checked};
        let config = CameraConfig { fps: 5, ..CameraConfig::default() };
        let mut demo = DemoSource::with_scene(&config, DemoScene::new(Scene::DocumentFront)).unwrap();
        demo.paced = false;
        let mut checker = QualityChecker::new(&CaptureConfig::default()).unwrap();
        let mut sandbox = crate::sandbox::recognize::Recognizer::new().unwrap();
        let mut accepted = 0;
        for i in 0..demo.cycle_len() {
            let frame = demo.next_frame(Duration::from_secs(1)).unwrap().image;
            let Ok(capture) = checker.capture(Mode::DocumentFront, frame) else { continue };
            accepted += 1;
            let jpeg = encode_checked(&capture, &EncodeConfig::default()).unwrap();
            let seen = sandbox.document_front(jpeg.bytes());
            assert!(seen.is_ok(), "frame {i} was accepted on the kiosk but not by the sandbox: {seen:?}");
        }
        assert!(accepted > 0);
    }

    /// The held frame of each scene at the kiosk's default 1280x720 passes the checks of the screen that asks for
    /// it, and the first frame of a scene (blurred, off to the side) does not: the demo completes every capture step,
    /// and auto-capture has real work to do.
    #[test]
    fn each_scene_passes_the_check_of_its_step_once_held() {
        use crate::capture::{CaptureConfig, Mode, QualityChecker};
        let config = CameraConfig { fps: 5, ..CameraConfig::default() };
        let scene = DemoScene::new(Scene::DocumentFront);
        let mut demo = DemoSource::with_scene(&config, scene.clone()).unwrap();
        demo.paced = false;
        let mut checker = QualityChecker::new(&CaptureConfig::default()).unwrap();
        let held_at = u64::from(DRIFT_SECS * 5) + 2;
        for (s, mode) in [
            (Scene::DocumentFront, Mode::DocumentFront),
            (Scene::DocumentBack, Mode::DocumentBack),
            (Scene::Face, Mode::Face),
        ] {
            scene.set(s);
            let frames: Vec<RgbImage> =
                (0..=held_at).map(|_| demo.next_frame(Duration::from_secs(1)).unwrap().image).collect();
            let first = checker.check(mode, &frames[0]);
            assert!(!first.accepted, "{s:?}: the first frame of a scene is refused: {first:?}");
            let held = checker.check(mode, &frames[held_at as usize]);
            assert!(held.accepted, "{s:?}: the held frame passes its check: {held:?}");
            // The back of the card is no front: its check wants the portrait.
            if s == Scene::DocumentBack {
                assert!(!checker.check(Mode::DocumentFront, &frames[held_at as usize]).accepted);
            }
        }
    }
}
