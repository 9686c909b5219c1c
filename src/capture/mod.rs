//! On-device quality checks and auto-capture. Owns the `[capture]` configuration, the face and document checks
//! ([`QualityChecker`]), their outcome ([`Verdict`], [`Metrics`], [`Hint`]), the [`AutoCapture`] state and
//! [`CheckedCapture`], the only thing `encode::encode_checked` accepts: a frame can reach the encoder only through
//! an accepting check. The checker holds a [`face::FaceDetector`], which is not `Send`: build it on the thread that
//! runs the checks (the capture thread in the kiosk, the main thread for `inspect`).

use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use thiserror::Error;

mod auto;
mod document;
pub mod face;
mod face_check;
mod measure;
mod verdict;

pub use auto::AutoCapture;
pub use verdict::{Hint, Metrics, Mode, Verdict};

/// `[capture]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Consecutive accepted frames before the automatic capture takes the sharpest of them.
    pub auto_frames: u32,
    /// Faces are searched on a grey copy whose longest side is at most this many pixels (smaller is faster).
    pub detect_max_side: u32,
    /// Face detector score threshold (rustface; lower finds more faces and more false ones).
    pub detector_score: f64,
    /// `[capture.face]`: the selfie checks.
    pub face: FaceCheckConfig,
    /// `[capture.document]`: the ID document checks.
    pub document: DocumentCheckConfig,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            auto_frames: 5,
            detect_max_side: 480,
            detector_score: 2.0,
            face: FaceCheckConfig::default(),
            document: DocumentCheckConfig::default(),
        }
    }
}

/// `[capture.face]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceCheckConfig {
    /// Smallest face height as a share of the frame height ("move closer" below).
    pub min_face_share: f64,
    /// Largest face height as a share of the frame height ("move back" above).
    pub max_face_share: f64,
    /// Width of the guide oval as a share of the frame width (the oval is centred).
    pub guide_width: f64,
    /// Height of the guide oval as a share of the frame height.
    pub guide_height: f64,
    /// Largest distance of the face centre from the oval's centre, in oval radii ("centre your face" above).
    pub max_offset: f64,
    /// Smallest left-right symmetry of the face's gradients, -1..1 ("look straight at the camera" below: the head
    /// is turned).
    pub min_symmetry: f64,
    /// Smallest variance of the Laplacian on the face ("hold still" below).
    pub min_sharpness: f64,
    /// Smallest mean luma on the face, 0..255 ("more light" below).
    pub min_brightness: f64,
    /// Largest mean luma on the face, 0..255 ("too bright" above).
    pub max_brightness: f64,
    /// Largest share of clipped highlights on the face ("too bright" above).
    pub max_clipped: f64,
}

impl Default for FaceCheckConfig {
    fn default() -> Self {
        FaceCheckConfig {
            min_face_share: 0.22,
            max_face_share: 0.70,
            guide_width: 0.40,
            guide_height: 0.80,
            max_offset: 0.35,
            min_symmetry: 0.22,
            min_sharpness: 50.0,
            min_brightness: 70.0,
            max_brightness: 200.0,
            max_clipped: 0.05,
        }
    }
}

/// `[capture.document]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentCheckConfig {
    /// Width of the guide rectangle as a share of the frame width; its height follows the ID-1 card shape
    /// (85.6 x 54 mm), limited to 90 % of the frame height.
    pub guide_width: f64,
    /// Smallest share of the guide the card must cover ("fill the frame with the card" below).
    pub min_fill: f64,
    /// Smallest variance of the Laplacian on the card ("hold still" below).
    pub min_sharpness: f64,
    /// Largest share of clipped highlights on the card ("tilt the card to avoid glare" above).
    pub max_glare: f64,
    /// Smallest mean luma on the card, 0..255 ("more light" below).
    pub min_brightness: f64,
    /// The front must show a portrait (a face on the card) ("show the side with your photo" otherwise).
    pub require_portrait: bool,
}

impl Default for DocumentCheckConfig {
    fn default() -> Self {
        DocumentCheckConfig {
            guide_width: 0.85,
            min_fill: 0.60,
            min_sharpness: 60.0,
            max_glare: 0.01,
            min_brightness: 60.0,
            require_portrait: true,
        }
    }
}

impl CaptureConfig {
    /// Checks that every value is in range; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let share = |k: &str, v: f64, lo: f64, hi: f64| -> Result<(), String> {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("capture.{k}: must be between {lo} and {hi}, got {v}"))
            }
        };
        if !(1..=120).contains(&self.auto_frames) {
            return Err(format!("capture.auto_frames: must be between 1 and 120, got {}", self.auto_frames));
        }
        if !(64..=4096).contains(&self.detect_max_side) {
            return Err(format!("capture.detect_max_side: must be between 64 and 4096, got {}", self.detect_max_side));
        }
        share("detector_score", self.detector_score, 0.1, 100.0)?;
        let f = &self.face;
        share("face.min_face_share", f.min_face_share, 0.0, 1.0)?;
        share("face.max_face_share", f.max_face_share, 0.0, 2.0)?;
        if f.min_face_share >= f.max_face_share {
            return Err("capture.face.min_face_share: must be below capture.face.max_face_share".into());
        }
        share("face.guide_width", f.guide_width, 0.05, 1.0)?;
        share("face.guide_height", f.guide_height, 0.05, 1.0)?;
        share("face.max_offset", f.max_offset, 0.0, 10.0)?;
        share("face.min_symmetry", f.min_symmetry, -1.0, 1.0)?;
        share("face.min_sharpness", f.min_sharpness, 0.0, 1e6)?;
        share("face.min_brightness", f.min_brightness, 0.0, 255.0)?;
        share("face.max_brightness", f.max_brightness, 0.0, 255.0)?;
        if f.min_brightness >= f.max_brightness {
            return Err("capture.face.min_brightness: must be below capture.face.max_brightness".into());
        }
        share("face.max_clipped", f.max_clipped, 0.0, 1.0)?;
        let d = &self.document;
        share("document.guide_width", d.guide_width, 0.1, 1.0)?;
        share("document.min_fill", d.min_fill, 0.0, 1.0)?;
        share("document.min_sharpness", d.min_sharpness, 0.0, 1e6)?;
        share("document.max_glare", d.max_glare, 0.0, 1.0)?;
        share("document.min_brightness", d.min_brightness, 0.0, 255.0)?;
        Ok(())
    }
}

/// Why a checker could not be built.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The face detector could not be built.
    #[error(transparent)]
    Face(#[from] face::FaceError),
    /// A `[capture]` value is out of range (the message names the key).
    #[error("{0}")]
    Config(String),
}

/// A frame that passed the quality checks for its mode. Only an accepting check makes one (its fields are
/// private and it has no public constructor), and it is the only input of `encode::encode_checked`.
#[derive(Clone)]
pub struct CheckedCapture {
    image: RgbImage,
    verdict: Verdict,
}

impl CheckedCapture {
    /// The accepted frame.
    pub fn image(&self) -> &RgbImage {
        &self.image
    }
    /// The accepting verdict (its metrics).
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    /// What was captured.
    pub fn mode(&self) -> Mode {
        self.verdict.mode
    }
}

impl std::fmt::Debug for CheckedCapture {
    // Never print the biometric pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCapture")
            .field("width", &self.image.width())
            .field("height", &self.image.height())
            .field("mode", &self.verdict.mode)
            .finish()
    }
}

/// A frame together with the verdict the checker gave it. Made only by [`QualityChecker::assess`]; an accepted
/// one turns into a [`CheckedCapture`].
pub struct Assessment {
    image: RgbImage,
    verdict: Verdict,
}

impl Assessment {
    /// The verdict.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    /// The frame.
    pub fn image(&self) -> &RgbImage {
        &self.image
    }
    /// The capture if the frame was accepted, else the refusing verdict.
    pub fn into_capture(self) -> Result<CheckedCapture, Box<Verdict>> {
        if self.verdict.accepted {
            Ok(CheckedCapture { image: self.image, verdict: self.verdict })
        } else {
            Err(Box::new(self.verdict))
        }
    }
}

impl std::fmt::Debug for Assessment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessment").field("verdict", &self.verdict).finish_non_exhaustive()
    }
}

/// Runs the face and document checks. Not `Send` (it holds a face detector): build it on its thread.
#[derive(Debug)]
pub struct QualityChecker {
    detector: face::FaceDetector,
    portrait: face::FaceDetector,
    config: CaptureConfig,
}

impl QualityChecker {
    /// A checker with the given thresholds.
    pub fn new(config: &CaptureConfig) -> Result<QualityChecker, CaptureError> {
        config.validate().map_err(CaptureError::Config)?;
        // The selfie detector runs on every preview frame: a coarser pyramid and window step than rustface's
        // defaults cut the 720p check from 17 to 11.5 ms of CPU (benches/quality.rs), leaving room on slower kiosk
        // hardware, and still find faces of the sizes we accept (tests/capture_checks.rs). rustface's window is
        // 40 px on the searched image, so at 426x240 (a 720p frame) faces from 1/6 of the frame height are found.
        // The portrait on a card is searched with the finer defaults.
        let selfie = face::DetectorSettings {
            min_face: 20,
            score_threshold: config.detector_score,
            pyramid_scale: 0.7,
            step: 5,
        };
        let detector = face::FaceDetector::new(selfie)?;
        let portrait = face::FaceDetector::new(face::DetectorSettings {
            min_face: 20,
            score_threshold: config.detector_score,
            ..Default::default()
        })?;
        Ok(QualityChecker { detector, portrait, config: config.clone() })
    }

    /// The thresholds in force.
    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// Checks a frame for `mode` (the live preview path: nothing is kept).
    pub fn check(&mut self, mode: Mode, frame: &RgbImage) -> Verdict {
        let start = Instant::now();
        let mut v = match mode {
            Mode::Face => face_check::check(&mut self.detector, &self.config, frame),
            Mode::DocumentFront | Mode::DocumentBack => document::check(&mut self.portrait, &self.config, mode, frame),
        };
        v.metrics.check_ms = start.elapsed().as_secs_f64() * 1000.0;
        v
    }

    /// Checks a frame and keeps it with its verdict (the auto-capture path).
    pub fn assess(&mut self, mode: Mode, frame: RgbImage) -> Assessment {
        let verdict = self.check(mode, &frame);
        Assessment { image: frame, verdict }
    }

    /// A manual capture: checked like any other frame; the capture if accepted, else the refusing verdict.
    pub fn capture(&mut self, mode: Mode, frame: RgbImage) -> Result<CheckedCapture, Box<Verdict>> {
        self.assess(mode, frame).into_capture()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_the_key() {
        CaptureConfig::default().validate().unwrap();
        type Edit = fn(&mut CaptureConfig);
        let cases: [(Edit, &str); 5] = [
            (|c| c.auto_frames = 0, "capture.auto_frames"),
            (|c| c.face.min_face_share = 0.9, "capture.face.min_face_share"),
            (|c| c.face.max_clipped = f64::NAN, "capture.face.max_clipped"),
            (|c| c.document.min_fill = 1.5, "capture.document.min_fill"),
            (|c| c.detect_max_side = 10, "capture.detect_max_side"),
        ];
        for (edit, key) in cases {
            let mut c = CaptureConfig::default();
            edit(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.starts_with(key), "{e}");
            assert!(matches!(QualityChecker::new(&c), Err(CaptureError::Config(_))));
        }
    }

    #[test]
    fn capture_and_encode_keys_load_from_the_environment() {
        let env: Vec<(String, String)> = [
            ("EKYC_DATA_DIR", "/tmp/x"),
            ("EKYC_CAPTURE_AUTO_FRAMES", "3"),
            ("EKYC_CAPTURE_FACE_MIN_FACE_SHARE", "0.3"),
            ("EKYC_CAPTURE_DOCUMENT_REQUIRE_PORTRAIT", "false"),
            ("EKYC_ENCODE_MAX_BYTES", "500000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = crate::config::load_with_env(None, &env).unwrap().config;
        assert_eq!(c.capture.auto_frames, 3);
        assert_eq!(c.capture.face.min_face_share, 0.3);
        assert!(!c.capture.document.require_portrait);
        assert_eq!(c.encode.max_bytes, 500_000);
        c.capture.validate().unwrap();
    }

    #[test]
    fn odd_frame_sizes_give_a_verdict_never_a_panic() {
        let mut q = QualityChecker::new(&CaptureConfig::default()).unwrap();
        for (w, h) in [(0, 0), (1, 1), (7, 300), (24, 24), (30, 50), (39, 39), (41, 41), (64, 48), (2000, 9), (9, 2000)]
        {
            let frame = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
            for mode in [Mode::Face, Mode::DocumentFront, Mode::DocumentBack] {
                let v = q.check(mode, &frame);
                assert!(!v.accepted, "{w}x{h} {mode:?}: {v:?}");
                assert_eq!((v.metrics.width, v.metrics.height), (w, h));
            }
        }
    }

    #[test]
    fn a_refused_assessment_gives_no_capture() {
        let mut q = QualityChecker::new(&CaptureConfig::default()).unwrap();
        let v = q.capture(Mode::Face, RgbImage::new(640, 360)).unwrap_err();
        assert!(!v.accepted);
        assert!(v.hints.contains(&Hint::LookAtCamera), "{v:?}");
    }
}
