//! The durable queue (placeholder until the queue issue lands).

use serde::{Deserialize, Serialize};

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {}
