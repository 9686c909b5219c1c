//! Frontal face detection with the bundled SeetaFace model (`rustface`, BSD-2-Clause; the model and its licence
//! are in `assets/model/`). A [`FaceDetector`] is not `Send` (rustface's detector is a plain trait object): build one
//! on the thread that uses it (the capture thread, a sandbox worker). The parsed model is shared, read-only.

use image::GrayImage;
use std::sync::OnceLock;
use thiserror::Error;

/// The SeetaFace frontal model, embedded so the binary is self-contained.
static MODEL_BYTES: &[u8] = include_bytes!("../../assets/model/seeta_fd_frontal_v1.0.bin");

/// Images smaller than this on either side are not searched (rustface's window is 20 px).
const MIN_SIDE: u32 = 24;

/// Why a detector could not be built.
#[derive(Debug, Error, Clone)]
pub enum FaceError {
    /// The embedded model did not parse (a corrupt build).
    #[error("face model does not load: {0}")]
    Model(String),
}

/// A detected face: its box in image pixels and the detector's confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    /// Left edge, pixels (may be slightly negative at the border).
    pub x: i32,
    /// Top edge, pixels.
    pub y: i32,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Detector score (higher is more certain; the default threshold is 2.0).
    pub score: f64,
}

impl FaceBox {
    /// Centre of the box.
    pub fn center(&self) -> (f64, f64) {
        (self.x as f64 + self.width as f64 / 2.0, self.y as f64 + self.height as f64 / 2.0)
    }

    /// Area in pixels.
    pub fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSettings {
    /// Smallest face searched for, pixels (at least 20).
    pub min_face: u32,
    /// Score threshold; lower finds more faces and more false ones.
    pub score_threshold: f64,
    /// Image pyramid scale step (0.1..0.99); higher is slower and finds more.
    pub pyramid_scale: f32,
    /// Sliding window step, pixels.
    pub step: u32,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        DetectorSettings { min_face: 40, score_threshold: 2.0, pyramid_scale: 0.8, step: 4 }
    }
}

fn model() -> Result<&'static rustface::Model, FaceError> {
    static MODEL: OnceLock<Result<rustface::Model, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| rustface::read_model(MODEL_BYTES).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| FaceError::Model(e.clone()))
}

/// A face detector for one thread.
pub struct FaceDetector {
    inner: Box<dyn rustface::Detector>,
    settings: DetectorSettings,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector").field("settings", &self.settings).finish()
    }
}

impl FaceDetector {
    /// Builds a detector with the given settings (out-of-range values are clamped to what rustface accepts).
    pub fn new(settings: DetectorSettings) -> Result<FaceDetector, FaceError> {
        let mut inner = rustface::create_detector_with_model(model()?.clone());
        let s = DetectorSettings {
            min_face: settings.min_face.max(20),
            score_threshold: if settings.score_threshold > 0.0 { settings.score_threshold } else { 2.0 },
            pyramid_scale: settings.pyramid_scale.clamp(0.1, 0.99),
            step: settings.step.max(1),
        };
        inner.set_min_face_size(s.min_face);
        inner.set_score_thresh(s.score_threshold);
        inner.set_pyramid_scale_factor(s.pyramid_scale);
        inner.set_slide_window_step(s.step, s.step);
        Ok(FaceDetector { inner, settings: s })
    }

    /// The settings in force.
    pub fn settings(&self) -> DetectorSettings {
        self.settings
    }

    /// Finds frontal faces, largest first. An image too small to hold a face gives an empty list.
    pub fn detect(&mut self, gray: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = gray.dimensions();
        if w < MIN_SIDE || h < MIN_SIDE || w.min(h) < self.settings.min_face {
            return Vec::new();
        }
        let data = rustface::ImageData::new(gray.as_raw(), w, h);
        let mut faces: Vec<FaceBox> = self
            .inner
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                FaceBox { x: b.x(), y: b.y(), width: b.width(), height: b.height(), score: f.score() }
            })
            .collect();
        faces.sort_by_key(|f| std::cmp::Reverse(f.area()));
        faces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(name: &str) -> GrayImage {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
        image::open(p).unwrap().to_luma8()
    }

    #[test]
    fn finds_the_frontal_portrait_and_no_face_on_the_cat() {
        let mut d = FaceDetector::new(DetectorSettings::default()).unwrap();
        let faces = d.detect(&gray("astronaut.png"));
        assert_eq!(faces.len(), 1, "{faces:?}");
        let (cx, cy) = faces[0].center();
        assert!((150.0..350.0).contains(&cx) && (60.0..300.0).contains(&cy), "{faces:?}");
        assert!(d.detect(&gray("chelsea.png")).is_empty());
    }

    #[test]
    fn finds_several_faces_in_the_group_photo() {
        let mut d = FaceDetector::new(DetectorSettings { min_face: 20, ..Default::default() }).unwrap();
        assert!(d.detect(&gray("group.png")).len() >= 3);
    }

    #[test]
    fn tiny_images_are_not_searched() {
        let mut d = FaceDetector::new(DetectorSettings::default()).unwrap();
        assert!(d.detect(&GrayImage::new(10, 10)).is_empty());
        assert!(d.detect(&GrayImage::new(1, 400)).is_empty());
    }
}
