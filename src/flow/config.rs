//! The flow's timing and attempt policy. Plain data, built from the `[kiosk]` configuration section by
//! `crate::view::KioskConfig::flow` (or directly by tests).

use super::Language;
use std::time::Duration;

/// Timing and attempt policy of the customer flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Without a touch for this long, "Are you still there?" appears.
    pub idle_timeout: Duration,
    /// How long "Are you still there?" counts down before the session is wiped.
    pub idle_countdown: Duration,
    /// Applications a customer may submit in one session before "please ask a member of staff".
    pub max_attempts: u32,
    /// How long the submitting screen waits for the answer before "saved, will be sent".
    pub submit_deadline: Duration,
    /// The face auto-capture countdown once the face is well placed.
    pub face_countdown: Duration,
    /// The language at the start of every session.
    pub language: Language,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout: Duration::from_secs(60),
            idle_countdown: Duration::from_secs(20),
            max_attempts: 3,
            submit_deadline: Duration::from_secs(20),
            face_countdown: Duration::from_secs(3),
            language: Language::English,
        }
    }
}
