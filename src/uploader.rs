//! The uploader worker (placeholder until the queue issue lands).

use serde::{Deserialize, Serialize};

/// `[uploader]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UploaderConfig {}
