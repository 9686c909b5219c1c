//! Camera sources. Owns the [`FrameSource`] trait and the frame type; sources run on the camera thread, which
//! creates them (nokhwa's camera is not `Send`). Placeholder: the camera issue fills in the sources.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use thiserror::Error;

/// `[camera]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {}

/// One decoded camera frame, RGB 8-bit.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The pixels.
    pub image: image::RgbImage,
    /// Sequence number from the source, increasing.
    pub seq: u64,
    /// When the source produced it.
    pub captured_at: Instant,
}

/// Why a source gave no frame.
#[derive(Debug, Error)]
pub enum CameraError {
    /// No frame arrived before the deadline.
    #[error("no frame within {0:?}")]
    Timeout(Duration),
}

/// A source of frames: a real camera, a replay of files, or the bundled demo frames.
pub trait FrameSource {
    /// The next frame, waiting at most `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError>;
    /// A human-readable description (device name, replay path, `DEMO`).
    fn describe(&self) -> String;
}
