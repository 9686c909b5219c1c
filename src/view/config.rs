//! The `[kiosk]` configuration section: how the customer window is shown and the flow's timing and attempt policy.
//! Loaded with the rest of the configuration on the main thread; [`KioskConfig::flow`] gives the flow its part.

use crate::flow::{FlowConfig, Language};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[kiosk]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KioskConfig {
    /// Show the customer window full screen.
    pub fullscreen: bool,
    /// Hide the mouse pointer over the customer window (touchscreens have no pointer to show).
    pub hide_cursor: bool,
    /// Without a touch for this long, "Are you still there?" appears.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long "Are you still there?" counts down before the session is wiped.
    #[serde(with = "humantime_serde")]
    pub idle_countdown: Duration,
    /// Applications a customer may submit in one session before "please ask a member of staff".
    pub max_attempts: u32,
    /// How long the submitting screen waits for the answer before "saved, will be sent".
    #[serde(with = "humantime_serde")]
    pub submit_deadline: Duration,
    /// The face auto-capture countdown once the face is well placed.
    #[serde(with = "humantime_serde")]
    pub face_countdown: Duration,
    /// The language every session starts in: `en` or `fr`.
    pub language: String,
    /// File holding the staff PIN (6 to 12 digits, mode 0600 or stricter) that opens the operator console on the
    /// kiosk. `EKYC_STAFF_PIN` takes precedence. Unset: the kiosk has no operator screen.
    pub staff_pin_file: Option<PathBuf>,
}

impl Default for KioskConfig {
    fn default() -> Self {
        let flow = FlowConfig::default();
        KioskConfig {
            fullscreen: true,
            hide_cursor: true,
            idle_timeout: flow.idle_timeout,
            idle_countdown: flow.idle_countdown,
            max_attempts: flow.max_attempts,
            submit_deadline: flow.submit_deadline,
            face_countdown: flow.face_countdown,
            language: flow.language.code().to_string(),
            staff_pin_file: None,
        }
    }
}

impl KioskConfig {
    /// Checks the values; the message starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        self.flow().map(|_| ())
    }

    /// The flow's part of the section, checked.
    pub fn flow(&self) -> Result<FlowConfig, String> {
        let language = Language::parse(&self.language).ok_or_else(|| {
            let known: Vec<&str> = Language::ALL.iter().map(|l| l.code()).collect();
            format!("kiosk.language: `{}` is not one of {}", self.language, known.join(", "))
        })?;
        if self.max_attempts == 0 {
            return Err("kiosk.max_attempts: must be at least 1".into());
        }
        for (key, d, min) in [
            ("kiosk.idle_timeout", self.idle_timeout, Duration::from_secs(5)),
            ("kiosk.idle_countdown", self.idle_countdown, Duration::from_secs(1)),
            ("kiosk.submit_deadline", self.submit_deadline, Duration::from_secs(1)),
        ] {
            if d < min {
                return Err(format!("{key}: must be at least {}", humantime::format_duration(min)));
            }
        }
        Ok(FlowConfig {
            idle_timeout: self.idle_timeout,
            idle_countdown: self.idle_countdown,
            max_attempts: self.max_attempts,
            submit_deadline: self.submit_deadline,
            face_countdown: self.face_countdown,
            language,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_flow_defaults() {
        assert_eq!(KioskConfig::default().flow(), Ok(FlowConfig::default()));
    }

    #[test]
    fn bad_values_name_their_key() {
        type Change = fn(&mut KioskConfig);
        let cases: [(Change, &str); 4] = [
            (|c| c.language = "klingon".into(), "kiosk.language"),
            (|c| c.max_attempts = 0, "kiosk.max_attempts"),
            (|c| c.idle_timeout = Duration::from_secs(1), "kiosk.idle_timeout"),
            (|c| c.submit_deadline = Duration::ZERO, "kiosk.submit_deadline"),
        ];
        for (change, key) in cases {
            let mut c = KioskConfig::default();
            change(&mut c);
            let err = c.flow().unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
    }
}
