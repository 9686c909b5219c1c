//! On-device quality checks (placeholder until the capture issue lands).

use serde::{Deserialize, Serialize};

pub mod face;

/// `[capture]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {}
