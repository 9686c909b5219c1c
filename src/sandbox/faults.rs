//! Fault injection for tests and training: forced responses, added latency, 5xx bursts, dropped connections and
//! trickled responses, plus the call log. Shared by every sandbox worker (behind a mutex) and by the test or
//! control endpoint that sets them.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Calls kept in the log (the oldest are dropped).
pub const MAX_CALLS: usize = 1000;
/// Fault rules kept at once.
pub const MAX_RULES: usize = 100;

/// The sandbox's endpoints are the API client's: one enum, so a fault rule, a call record and the client's
/// errors name an endpoint the same way (snake_case in JSON).
pub use crate::api::Endpoint as SandboxEndpoint;

/// What a fault rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer this instead of the real handler (the body is still read first).
    Respond {
        /// Status code.
        status: u16,
        /// Body, sent as is.
        #[serde(default)]
        body: String,
        /// `Content-Type` (default `application/json`; empty for none).
        #[serde(default = "default_content_type")]
        content_type: String,
        /// Extra headers, e.g. `[["Location", "http://127.0.0.1:9/"]]`.
        #[serde(default)]
        headers: Vec<(String, String)>,
        /// Close the connection after this many bytes of the response (head included): a truncated answer.
        #[serde(default)]
        cut_after: Option<usize>,
    },
    /// Answer `503 Service Unavailable` (`{"error": "service unavailable"}`), with `Retry-After` when given.
    Unavailable {
        /// `Retry-After` in seconds.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Read the whole body, then close the connection without answering (the ambiguous window).
    DropAfterBody,
    /// Wait this long before answering (combines with the other actions).
    Latency {
        /// The added delay, e.g. `"2s"`.
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
    /// Write the answer `bytes` at a time, `interval` apart (combines with the other actions).
    Trickle {
        /// Bytes per write (at least 1).
        bytes: usize,
        /// Pause between writes, e.g. `"100ms"`.
        #[serde(with = "humantime_serde")]
        interval: Duration,
    },
}

fn default_content_type() -> String {
    "application/json".into()
}

/// A fault rule: an action for matching calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The endpoint it applies to; none: every API endpoint.
    #[serde(default)]
    pub endpoint: Option<SandboxEndpoint>,
    /// How many calls it applies to; none: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// What it does.
    #[serde(flatten)]
    pub action: FaultAction,
}

/// What the faults decide for one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Added delay before answering (the sum of the matching latency rules).
    pub latency: Duration,
    /// Trickle pacing, if a trickle rule matched.
    pub trickle: Option<(usize, Duration)>,
    /// The outcome that replaces the real handler, if any.
    pub outcome: Option<FaultAction>,
}

/// One call the sandbox received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The endpoint, when the path matched one.
    pub endpoint: Option<SandboxEndpoint>,
    /// Method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Status answered; none when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes_received: u64,
    /// Whether the whole body was received.
    pub body_complete: bool,
    /// When the call arrived, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The shared fault table and call log.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    calls: Mutex<VecDeque<CallRecord>>,
}

/// Why a fault rule was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    /// Too many rules are active.
    #[error("too many fault rules (at most {MAX_RULES}); clear some first")]
    TooMany,
    /// The rule's values are out of range.
    #[error("invalid fault rule: {0}")]
    Invalid(&'static str),
}

impl Faults {
    /// Adds a rule (checked: a status in 100..=599, a trickle of at least one byte, `times` not zero).
    pub fn add(&self, rule: FaultRule) -> Result<(), FaultError> {
        match &rule.action {
            FaultAction::Respond { status, .. } if !(100..=599).contains(status) => {
                return Err(FaultError::Invalid("status must be 100..=599"));
            }
            FaultAction::Respond { content_type, headers, .. }
                if content_type.contains(['\r', '\n'])
                    || headers.iter().any(|(n, v)| {
                        n.is_empty() || n.contains(['\r', '\n', ':', ' ']) || v.contains(['\r', '\n'])
                    }) =>
            {
                return Err(FaultError::Invalid("headers must not contain line breaks"));
            }
            FaultAction::Trickle { bytes: 0, .. } => {
                return Err(FaultError::Invalid("trickle bytes must be at least 1"));
            }
            FaultAction::Latency { delay } if *delay > Duration::from_secs(600) => {
                return Err(FaultError::Invalid("latency above 10 minutes"));
            }
            FaultAction::Trickle { interval, .. } if *interval > Duration::from_secs(60) => {
                return Err(FaultError::Invalid("trickle interval above 1 minute"));
            }
            _ => {}
        }
        if rule.times == Some(0) {
            return Err(FaultError::Invalid("times must be at least 1"));
        }
        let mut rules = lock(&self.rules);
        if rules.len() >= MAX_RULES {
            return Err(FaultError::TooMany);
        }
        rules.push(rule);
        Ok(())
    }

    /// Forces the next `times` responses of `endpoint` (every endpoint when none).
    pub fn force(
        &self,
        endpoint: Option<SandboxEndpoint>,
        times: u32,
        status: u16,
        body: &str,
        content_type: &str,
    ) -> Result<(), FaultError> {
        self.add(FaultRule {
            endpoint,
            times: Some(times),
            action: FaultAction::Respond {
                status,
                body: body.into(),
                content_type: content_type.into(),
                headers: Vec::new(),
                cut_after: None,
            },
        })
    }

    /// Adds `delay` before every answer until cleared.
    pub fn set_latency(&self, delay: Duration) -> Result<(), FaultError> {
        self.add(FaultRule { endpoint: None, times: None, action: FaultAction::Latency { delay } })
    }

    /// The next `times` calls (to `endpoint`, or any) are answered 503, with `Retry-After` when given.
    pub fn unavailable(
        &self,
        endpoint: Option<SandboxEndpoint>,
        times: u32,
        retry_after: Option<u64>,
    ) -> Result<(), FaultError> {
        self.add(FaultRule { endpoint, times: Some(times), action: FaultAction::Unavailable { retry_after } })
    }

    /// The next `times` calls (to `endpoint`, or any) have their body read and then the connection closed.
    pub fn drop_after_body(&self, endpoint: Option<SandboxEndpoint>, times: u32) -> Result<(), FaultError> {
        self.add(FaultRule { endpoint, times: Some(times), action: FaultAction::DropAfterBody })
    }

    /// Every answer (to `endpoint`, or any) is written `bytes` at a time, `interval` apart, until cleared.
    pub fn trickle(
        &self,
        endpoint: Option<SandboxEndpoint>,
        bytes: usize,
        interval: Duration,
    ) -> Result<(), FaultError> {
        self.add(FaultRule { endpoint, times: None, action: FaultAction::Trickle { bytes, interval } })
    }

    /// Removes every rule.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// The active rules.
    pub fn rules(&self) -> Vec<FaultRule> {
        lock(&self.rules).clone()
    }

    /// Decides what happens to one call and consumes the counted rules that applied.
    pub fn plan(&self, endpoint: SandboxEndpoint) -> Plan {
        let mut rules = lock(&self.rules);
        let mut plan = Plan::default();
        for rule in rules.iter_mut() {
            if rule.endpoint.is_some_and(|e| e != endpoint) {
                continue;
            }
            let applied = match &rule.action {
                FaultAction::Latency { delay } => {
                    plan.latency += *delay;
                    true
                }
                FaultAction::Trickle { bytes, interval } if plan.trickle.is_none() => {
                    plan.trickle = Some((*bytes, *interval));
                    true
                }
                FaultAction::Trickle { .. } => false,
                outcome if plan.outcome.is_none() => {
                    plan.outcome = Some(outcome.clone());
                    true
                }
                _ => false,
            };
            if applied && let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
        }
        rules.retain(|r| r.times != Some(0));
        plan
    }

    /// Appends to the call log.
    pub fn record(&self, call: CallRecord) {
        let mut calls = lock(&self.calls);
        if calls.len() >= MAX_CALLS {
            calls.pop_front();
        }
        calls.push_back(call);
    }

    /// The call log, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.calls).iter().cloned().collect()
    }

    /// Empties the call log.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Locks a mutex, recovering from a poisoned one (the data is a plain table; a panicking holder cannot leave it
/// half-updated in a way that matters).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_are_consumed_and_modifiers_combine() {
        let f = Faults::default();
        f.unavailable(Some(SandboxEndpoint::Face), 2, Some(3)).unwrap();
        f.set_latency(Duration::from_millis(5)).unwrap();
        f.drop_after_body(None, 1).unwrap();
        // Document: the face burst does not apply; the drop does.
        let p = f.plan(SandboxEndpoint::Document);
        assert_eq!(p.outcome, Some(FaultAction::DropAfterBody));
        assert_eq!(p.latency, Duration::from_millis(5));
        for _ in 0..2 {
            assert_eq!(f.plan(SandboxEndpoint::Face).outcome, Some(FaultAction::Unavailable { retry_after: Some(3) }));
        }
        assert_eq!(f.plan(SandboxEndpoint::Face).outcome, None);
        assert_eq!(f.rules().len(), 1, "only the latency stays");
        f.clear();
        assert_eq!(f.plan(SandboxEndpoint::Face), Plan::default());
    }

    #[test]
    fn bad_rules_are_refused_and_json_round_trips() {
        let f = Faults::default();
        assert!(f.force(None, 1, 42, "", "").is_err());
        assert!(f.trickle(None, 0, Duration::from_millis(1)).is_err());
        assert!(f.force(None, 0, 500, "", "").is_err());
        let rule: FaultRule = serde_json::from_str(
            r#"{"endpoint": "create_request", "times": 1, "action": "respond", "status": 409, "body": "{}"}"#,
        )
        .unwrap();
        assert_eq!(rule.endpoint, Some(SandboxEndpoint::CreateRequest));
        assert!(
            matches!(rule.action, FaultAction::Respond { status: 409, ref content_type, .. } if content_type == "application/json")
        );
        let lat: FaultRule = serde_json::from_str(r#"{"action": "latency", "delay": "250ms"}"#).unwrap();
        assert_eq!(lat.action, FaultAction::Latency { delay: Duration::from_millis(250) });
        assert!(serde_json::from_str::<FaultRule>(r#"{"action": "explode"}"#).is_err());
    }
}
