//! What the UI needs from the rest of the kiosk, as one small trait ([`Services`]), and the [`Mailbox`] through which
//! worker threads report back to the UI thread. The real camera, capture and queue modules plug in behind
//! [`Services`] ([`crate::view::LiveServices`]); [`crate::view::demo`] stands in for the gallery and the UI tests.
//!
//! Threads: [`Services`] methods are called on the UI thread and must return at once (start work on a worker,
//! never block on a device or the network). Workers post to the [`Mailbox`] from any thread; the UI thread drains it.

use super::console::ConsoleReport;
use crate::api::ErrorCode;
use crate::contact::{Email, Phone};
use crate::flow::{CameraMode, CaptureTarget, Event};
use crate::queue::Acknowledgeable;
use slint::{Rgb8Pixel, SharedPixelBuffer};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Reports waiting for the UI thread beyond this are dropped (and logged). The UI drains the mailbox at least every
/// tick (100 ms) and reports are rare (a few per capture or submission), so this bound is never reached in normal use.
pub const MAILBOX_CAPACITY: usize = 256;

/// Why an operator action failed. Messages are shown on the operator console.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// No application in the queue has this reference.
    #[error("no application {0} in the queue")]
    NotFound(String),
    /// The queue cannot be read or written right now.
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

/// One application in the queue, as the operator console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    /// The reference code.
    pub reference: String,
    /// The stored state (`pending`, `in_flight`, `done`, `needs_user`, `failed`).
    pub state: String,
    /// Time since it was saved.
    pub age: Duration,
    /// Send attempts so far.
    pub attempts: u32,
    /// The last error, if any.
    pub last_error: Option<ErrorCode>,
    /// The contact details, for applications that need the customer (to follow up).
    pub contact: Option<String>,
}

/// Why the queue cannot save applications (the console's alert says which, and what to do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLock {
    /// The key file is missing while the database holds data encrypted under a key.
    KeyMissing,
    /// The key file does not open this database.
    KeyMismatch,
    /// The queue thread does not answer (stopped, or stuck on the disk).
    NotAnswering,
}

impl QueueLock {
    /// The stable code the console words (`Texts.queue-lock`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueLock::KeyMissing => "key_missing",
            QueueLock::KeyMismatch => "key_mismatch",
            QueueLock::NotAnswering => "not_answering",
        }
    }
}

impl From<crate::queue::LockReason> for QueueLock {
    fn from(r: crate::queue::LockReason) -> QueueLock {
        match r {
            crate::queue::LockReason::KeyMissing => QueueLock::KeyMissing,
            crate::queue::LockReason::KeyMismatch => QueueLock::KeyMismatch,
        }
    }
}

/// The queue's alerts for the operator console.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueAlerts {
    /// The queue cannot save applications, and why; `None` when it can.
    pub locked: Option<QueueLock>,
    /// The API refused the key; sending is paused.
    pub api_key_rejected: bool,
    /// A corrupt database was moved to quarantine (what happened, in English, with the path and what was
    /// salvaged), until an operator acknowledges it.
    pub quarantine: Option<String>,
    /// Unsent applications purged after `queue.max_age`, until an operator acknowledges it.
    pub expired: u64,
}

/// The kiosk's camera, capture, queue and uploader, as the UI uses them. Every method returns at once; results
/// come back through the [`Mailbox`] given to the implementation when it was built.
pub trait Services {
    /// True for the demo implementation (the status bar says DEMO).
    fn is_demo(&self) -> bool;
    /// Start (or switch) the camera and its checks: post preview frames ([`Mailbox::post_frame`]) and verdicts
    /// ([`Mailbox::post_verdict`]) tagged with `session`.
    fn start_camera(&mut self, mode: CameraMode, session: u64);
    /// Stop the camera; no frame or verdict of the old mode may arrive afterwards with the current session.
    fn stop_camera(&mut self);
    /// Take the best recent frame for `target`, check and encode it, hold it; post [`Event::Captured`] (after a
    /// thumbnail with [`Report::Thumbnail`]) or [`Event::CaptureRejected`].
    fn capture(&mut self, target: CaptureTarget, session: u64);
    /// Drop the held photo for `target`.
    fn drop_capture(&mut self, target: CaptureTarget);
    /// Save the held photos with these contact details in the durable queue; post [`Event::Saved`] once committed
    /// (or [`Event::SaveFailed`]), then the uploader's [`Event::Progress`], [`Event::Accepted`] or
    /// [`Event::Rejected`] for that reference.
    fn enqueue(&mut self, session: u64, email: Email, phone: Phone, supersedes: Option<String>);
    /// Drop everything held for the session: photos, frames, anything in flight for it.
    fn wipe(&mut self);
    /// The applications in the queue, newest first.
    fn queue_items(&mut self) -> Result<Vec<QueueItem>, ServiceError>;
    /// The queue's alerts.
    fn queue_alerts(&mut self) -> QueueAlerts;
    /// An operator has seen this alert: clear it (it stays across restarts until then).
    fn acknowledge(&mut self, which: Acknowledgeable) -> Result<(), ServiceError>;
    /// Make an application due now.
    fn retry(&mut self, reference: &str) -> Result<(), ServiceError>;
    /// Delete an application and its images from this kiosk.
    fn purge(&mut self, reference: &str) -> Result<(), ServiceError>;
    /// List the cameras the operator can choose from: answered with [`ConsoleReport::Cameras`].
    fn list_cameras(&mut self);
    /// Show the camera `id` (a [`super::CameraOption`] id) on the operator console: its preview frames
    /// ([`Mailbox::post_console_frame`]) and its checks ([`ConsoleReport::CameraCheck`], face or document);
    /// `None` stops it. Only while no customer capture screen is shown.
    fn console_camera(&mut self, id: Option<&str>, face: bool);
    /// From now on the customer screens use the camera `id`; answered with [`ConsoleReport::Cameras`].
    fn use_camera(&mut self, id: &str);
}

/// A message from a worker to the UI thread.
#[derive(Debug, Clone)]
pub enum Report {
    /// A flow event (captures, queue and uploader outcomes, status).
    Event(Event),
    /// An answer for the operator console.
    Console(ConsoleReport),
    /// The queue locked (`Some`: nothing can be saved, and why) or unlocked; the status bar, the welcome screen
    /// and the console say so.
    QueueLocked(Option<QueueLock>),
    /// The customer camera is available (`None`) or not, and why (`Some`: none found, or it does not open); the
    /// status bar, the welcome screen and the console's camera page say so. The capture thread keeps looking.
    CameraStatus(Option<String>),
    /// A small picture of a held photo for the review screen, sent before its [`Event::Captured`].
    Thumbnail {
        /// The session it belongs to.
        session: u64,
        /// Which photo.
        target: CaptureTarget,
        /// The picture (a few hundred pixels wide).
        pixels: SharedPixelBuffer<Rgb8Pixel>,
    },
}

/// A preview frame: only the latest is kept.
#[derive(Debug, Clone)]
pub struct PreviewFrame {
    /// The session it was taken for.
    pub session: u64,
    /// The pixels, already scaled for display.
    pub pixels: SharedPixelBuffer<Rgb8Pixel>,
}

/// Where workers post for the UI thread. Frames and verdicts keep only the latest (a slow UI skips frames, it never
/// queues them); other reports wait in a bounded queue.
pub struct Mailbox {
    frame: Mutex<Option<PreviewFrame>>,
    console_frame: Mutex<Option<SharedPixelBuffer<Rgb8Pixel>>>,
    verdict: Mutex<Option<Event>>,
    reports: Mutex<VecDeque<Report>>,
    wake_pending: AtomicBool,
    wake: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// A mailbox that calls `wake` (from the posting thread) when it goes from empty to non-empty; `wake` should
    /// schedule a drain on the UI thread. Tests pass a no-op and drain by hand.
    pub fn new(wake: impl Fn() + Send + Sync + 'static) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            frame: Mutex::new(None),
            console_frame: Mutex::new(None),
            verdict: Mutex::new(None),
            reports: Mutex::new(VecDeque::new()),
            wake_pending: AtomicBool::new(false),
            wake: Box::new(wake),
        })
    }

    /// Replaces the waiting preview frame.
    pub fn post_frame(&self, session: u64, pixels: SharedPixelBuffer<Rgb8Pixel>) {
        *lock(&self.frame) = Some(PreviewFrame { session, pixels });
        self.wake();
    }

    /// Replaces the waiting preview frame of the operator console's camera page.
    pub fn post_console_frame(&self, pixels: SharedPixelBuffer<Rgb8Pixel>) {
        *lock(&self.console_frame) = Some(pixels);
        self.wake();
    }

    /// Takes the waiting console frame (the console drains it when it drains the rest).
    pub fn take_console_frame(&self) -> Option<SharedPixelBuffer<Rgb8Pixel>> {
        lock(&self.console_frame).take()
    }

    /// Replaces the waiting verdict (an [`Event::Verdict`]).
    pub fn post_verdict(&self, session: u64, ready: bool, hint: Option<String>) {
        *lock(&self.verdict) = Some(Event::Verdict { session, ready, hint });
        self.wake();
    }

    /// Queues a report; dropped (and logged) if [`MAILBOX_CAPACITY`] reports are already waiting.
    pub fn post(&self, report: Report) {
        {
            let mut q = lock(&self.reports);
            if q.len() >= MAILBOX_CAPACITY {
                log::error!("ui mailbox full: dropping a report ({})", report_kind(&report));
                return;
            }
            q.push_back(report);
        }
        self.wake();
    }

    /// Posts a flow event.
    pub fn post_event(&self, event: Event) {
        self.post(Report::Event(event));
    }

    /// Takes everything waiting: the latest frame, then the queued reports in order, then the latest verdict.
    pub fn take(&self) -> (Option<PreviewFrame>, Vec<Report>) {
        self.wake_pending.store(false, Ordering::SeqCst);
        let frame = lock(&self.frame).take();
        let mut reports: Vec<Report> = lock(&self.reports).drain(..).collect();
        if let Some(v) = lock(&self.verdict).take() {
            reports.push(Report::Event(v));
        }
        (frame, reports)
    }

    /// Drops what waits for the session that ends (on a wipe): frames, verdicts, flow events and thumbnails. The
    /// kiosk-wide reports stay: a console answer (the connection check the status bar waits for), the queue lock and
    /// the camera's status are not the customer's and would not come again.
    pub fn clear(&self) {
        lock(&self.frame).take();
        lock(&self.console_frame).take();
        lock(&self.verdict).take();
        lock(&self.reports)
            .retain(|r| matches!(r, Report::Console(_) | Report::QueueLocked(_) | Report::CameraStatus(_)));
    }

    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            (self.wake)();
        }
    }
}

fn report_kind(r: &Report) -> &'static str {
    match r {
        Report::Event(_) => "event",
        Report::Thumbnail { .. } => "thumbnail",
        Report::Console(_) => "console",
        Report::QueueLocked(_) => "queue lock",
        Report::CameraStatus(_) => "camera status",
    }
}

/// Locks a mutex, recovering the data if a thread panicked while holding it (the data is a plain slot or queue,
/// always in a consistent state between statements).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pixels() -> SharedPixelBuffer<Rgb8Pixel> {
        SharedPixelBuffer::new(4, 2)
    }

    #[test]
    fn keeps_only_the_latest_frame_and_verdict_and_wakes_once_per_drain() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let mb = Mailbox::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        for i in 0..5 {
            mb.post_frame(i, pixels());
            mb.post_verdict(i, false, None);
        }
        mb.post_event(Event::Start);
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let (frame, reports) = mb.take();
        assert_eq!(frame.map(|f| f.session), Some(4));
        assert_eq!(reports.len(), 2);
        assert!(matches!(reports[0], Report::Event(Event::Start)));
        assert!(matches!(reports[1], Report::Event(Event::Verdict { session: 4, .. })));
        mb.post_event(Event::Start);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reports_are_bounded() {
        let mb = Mailbox::new(|| {});
        for _ in 0..MAILBOX_CAPACITY + 10 {
            mb.post_event(Event::Start);
        }
        assert_eq!(mb.take().1.len(), MAILBOX_CAPACITY);
    }

    #[test]
    fn a_wipe_drops_the_sessions_reports_and_keeps_the_kiosks() {
        let mb = Mailbox::new(|| {});
        mb.post_frame(1, pixels());
        mb.post_console_frame(pixels());
        mb.post_verdict(1, true, None);
        mb.post_event(Event::Captured { session: 1, target: CaptureTarget::Face });
        mb.post(Report::Thumbnail { session: 1, target: CaptureTarget::Face, pixels: pixels() });
        mb.post(Report::QueueLocked(Some(QueueLock::KeyMissing)));
        mb.post(Report::Console(ConsoleReport::Connection(Ok(Duration::from_millis(5)))));
        mb.clear();
        assert!(mb.take_console_frame().is_none());
        let (frame, reports) = mb.take();
        assert!(frame.is_none());
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert!(matches!(reports[0], Report::QueueLocked(Some(QueueLock::KeyMissing))));
        assert!(matches!(reports[1], Report::Console(ConsoleReport::Connection(Ok(_)))));
    }
}
