//! JPEG encoding to a size budget. Placeholder: the capture issue fills it in. Runs on the capture thread (kiosk)
//! or the main thread (CLI).

use serde::{Deserialize, Serialize};

/// `[encode]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {}

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

    /// Test-only: wraps bytes without checks (the queue's unit tests need images before the real constructors
    /// land).
    #[cfg(test)]
    pub(crate) fn for_tests(bytes: Vec<u8>, width: u32, height: u32) -> UploadJpeg {
        UploadJpeg { bytes, width, height, origin: Origin::OperatorFile }
    }
}
