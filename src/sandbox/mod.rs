//! The local sandbox API (placeholder until its issue lands).

use serde::{Deserialize, Serialize};

/// `[sandbox]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {}
