//! The durable queue: enrollments and their steps in SQLite, images encrypted at rest, leases, backoff, retention
//! and quarantine. One thread (the queue thread, [`worker`]) owns the connection; everyone else (the uploader
//! thread, the UI thread, the CLI's main thread) talks to it through a [`QueueHandle`].
//!
//! Invariants kept here: "saved" is reported only after COMMIT; images are encrypted at rest and securely deleted
//! (`secure_delete`, then a truncating WAL checkpoint) once the request step is done or the enrollment purged; a
//! corrupt database is moved aside, never deleted; a missing or wrong key locks the queue, never drops a row.

pub mod backoff;
pub mod crypto;
pub mod migrations;
pub mod reference;
mod store;
pub mod worker;

pub use backoff::{Backoff, RetryBudget};
pub use store::{
    Acknowledgeable, Alert, CERTIFICATE_ALERT, DB_FILE, Enqueued, EnrollmentDetail, EnrollmentSummary, Event, ImageRef,
    ImageRole, Lease, LockReason, LoggedEvent, NewEnrollment, OpenReport, Outcome, PAGE_SIZE, PurgeReason,
    QUARANTINE_DIR, QueueError, QueueStatus, State, StepKind, StepSummary, Store, free_bytes, now_ms,
};
pub use worker::{ImageReader, LeaseAnswer, QueueHandle};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[queue]`: bounds and retention of the durable queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Most applications waiting to be sent (not done) at once; more are refused with a clear message.
    pub max_pending: u64,
    /// Most image bytes stored at once.
    pub max_bytes: u64,
    /// How long an application is kept on this device, sent or not. Measured on a monotonic clock while the
    /// program runs, so a wall-clock jump can never purge anything.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Free disk space always kept in reserve (so purges and checkpoints still work on a nearly full disk).
    pub disk_headroom_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_pending: 500,
            max_bytes: 2 * 1024 * 1024 * 1024,
            max_age: Duration::from_secs(30 * 24 * 3600),
            disk_headroom_bytes: 64 * 1024 * 1024,
        }
    }
}
