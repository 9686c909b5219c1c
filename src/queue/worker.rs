//! The queue thread and its handle. The thread owns the [`Store`] (and so the only SQLite connection); the UI
//! thread, the CLI and the uploader thread send it [`Command`]s through a cloneable [`QueueHandle`] and wait for the
//! answer with a deadline. Events are broadcast to subscribers after the change they describe is committed.
//!
//! The uploader runs on its own thread so that a slow upload never delays saving the next customer's application:
//! it leases a step, streams the step's images back chunk by chunk through an [`ImageReader`] (each chunk is one
//! round trip to this thread, decrypted here, 64 KiB at most in flight), and reports the outcome.

use super::store::{
    Enqueued, EnrollmentDetail, EnrollmentSummary, Event, Lease, NewEnrollment, OpenReport, Outcome, PurgeReason,
    QueueError, QueueStatus, Store,
};
use super::{Acknowledgeable, Alert, ImageRole, QueueConfig};
use crate::encode::UploadJpeg;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Deadline for ordinary calls to the queue thread.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for an enqueue (several MB encrypted and fsynced).
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(120);
/// Events buffered per subscriber before new ones are dropped for it.
const EVENT_BUFFER: usize = 1024;

type Reply<T> = Sender<Result<T, QueueError>>;

/// What the uploader gets when it asks for work.
#[derive(Debug)]
pub enum LeaseAnswer {
    /// A step to send now (it is `in_flight` until completed).
    Step(Box<Lease>),
    /// Nothing is due; the soonest step is due after this long.
    Wait(Duration),
    /// Nothing is waiting to be sent at all.
    Idle,
}

/// A message to the queue thread.
enum Command {
    Enqueue(Box<NewEnrollment>, Reply<Enqueued>),
    Status(Reply<QueueStatus>),
    List(Reply<Vec<EnrollmentSummary>>),
    Show(String, Reply<EnrollmentDetail>),
    Retry(String, Reply<EnrollmentSummary>),
    Purge(String, Reply<Event>),
    Subscribe(SyncSender<Event>),
    RegisterWaker(SyncSender<()>),
    Lease(Reply<LeaseAnswer>),
    ReadChunk { image: i64, index: u32, reply: Reply<Vec<u8>> },
    Complete { step_id: i64, attempt: Option<u32>, outcome: Outcome, reply: Reply<()> },
    ReleaseLease { step_id: i64, attempt: u32, sent: bool, reply: Reply<()> },
    ReplaceImages { step_id: i64, images: Vec<(ImageRole, UploadJpeg)>, reply: Reply<()> },
    KeyRejected(bool, Reply<()>),
    TlsFailed(bool, Reply<()>),
    CertificateRefused(bool, Reply<()>),
    Acknowledge(Acknowledgeable, Reply<bool>),
    Sendable(Reply<u64>),
    IntegrityCheck(Reply<String>),
    Shutdown,
}

/// A cloneable handle to the queue thread. Every call has a deadline.
#[derive(Clone)]
pub struct QueueHandle {
    tx: Sender<Command>,
    join: Arc<Mutex<Option<JoinHandle<()>>>>,
    report: Arc<OpenReport>,
    dir: PathBuf,
}

impl std::fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueHandle").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl QueueHandle {
    /// Opens the queue in `data_dir` on a new queue thread (see [`Store::open`]) and returns its handle once it is
    /// ready. `backoff_cap` is the uploader's longest delay.
    pub fn open(data_dir: &Path, cfg: &QueueConfig, backoff_cap: Duration) -> Result<QueueHandle, QueueError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let dir = data_dir.to_owned();
        let cfg2 = cfg.clone();
        let tick = (cfg.max_age / 10).clamp(Duration::from_millis(50), Duration::from_secs(60));
        let join = std::thread::Builder::new()
            .name("queue".into())
            .spawn(move || match Store::open(&dir, &cfg2, backoff_cap) {
                Ok(store) => {
                    let _ = ready_tx.send(Ok(store.open_report().clone()));
                    run(store, rx, tick);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| QueueError::Io { context: "cannot start the queue thread".into(), source: e })?;
        let report = match ready_rx.recv_timeout(CALL_TIMEOUT) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = join.join();
                return Err(e);
            }
            Err(_) => return Err(QueueError::Timeout(CALL_TIMEOUT)),
        };
        Ok(QueueHandle {
            tx,
            join: Arc::new(Mutex::new(Some(join))),
            report: Arc::new(report),
            dir: data_dir.to_owned(),
        })
    }

    /// Runs an already opened store (e.g. in memory) on a new queue thread.
    pub fn spawn(store: Store, retention_tick: Duration) -> Result<QueueHandle, QueueError> {
        let (tx, rx) = mpsc::channel();
        let report = store.open_report().clone();
        let dir = store.dir().map(Path::to_owned).unwrap_or_default();
        let join = std::thread::Builder::new()
            .name("queue".into())
            .spawn(move || run(store, rx, retention_tick))
            .map_err(|e| QueueError::Io { context: "cannot start the queue thread".into(), source: e })?;
        Ok(QueueHandle { tx, join: Arc::new(Mutex::new(Some(join))), report: Arc::new(report), dir })
    }

    /// What happened at open (quarantine, new key, recovered leases).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command, timeout: Duration) -> Result<T, QueueError> {
        let (tx, rx) = mpsc::channel();
        self.tx.send(make(tx)).map_err(|_| QueueError::Stopped)?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(QueueError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(QueueError::Stopped),
        }
    }

    /// Saves an enrollment. `Ok` means COMMIT returned: the customer may be told it is saved.
    pub fn enqueue(&self, new: NewEnrollment) -> Result<Enqueued, QueueError> {
        self.call(|r| Command::Enqueue(Box::new(new), r), ENQUEUE_TIMEOUT)
    }

    /// Counts and alerts.
    pub fn status(&self) -> Result<QueueStatus, QueueError> {
        self.call(Command::Status, CALL_TIMEOUT)
    }

    /// Every enrollment.
    pub fn list(&self) -> Result<Vec<EnrollmentSummary>, QueueError> {
        self.call(Command::List, CALL_TIMEOUT)
    }

    /// One enrollment by queue id or reference code.
    pub fn show(&self, id_or_ref: &str) -> Result<EnrollmentDetail, QueueError> {
        self.call(|r| Command::Show(id_or_ref.to_string(), r), CALL_TIMEOUT)
    }

    /// Makes an enrollment due now.
    pub fn retry(&self, id_or_ref: &str) -> Result<EnrollmentSummary, QueueError> {
        self.call(|r| Command::Retry(id_or_ref.to_string(), r), CALL_TIMEOUT)
    }

    /// Deletes an enrollment and its images from this device.
    pub fn purge(&self, id_or_ref: &str) -> Result<Event, QueueError> {
        self.call(|r| Command::Purge(id_or_ref.to_string(), r), CALL_TIMEOUT)
    }

    /// Subscribes to events. A subscriber that falls more than 1024 events behind misses the newer ones (logged);
    /// dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> Result<Receiver<Event>, QueueError> {
        let (tx, rx) = mpsc::sync_channel(EVENT_BUFFER);
        self.tx.send(Command::Subscribe(tx)).map_err(|_| QueueError::Stopped)?;
        Ok(rx)
    }

    /// Registers a channel poked whenever something may have become due (the uploader's wake-up).
    pub fn register_waker(&self) -> Result<Receiver<()>, QueueError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Command::RegisterWaker(tx)).map_err(|_| QueueError::Stopped)?;
        Ok(rx)
    }

    /// Leases the next due step (uploader).
    pub fn lease(&self) -> Result<LeaseAnswer, QueueError> {
        self.call(Command::Lease, CALL_TIMEOUT)
    }

    /// Records a leased step's outcome, whatever lease it was sent under.
    pub fn complete(&self, step_id: i64, outcome: Outcome) -> Result<(), QueueError> {
        self.call(|reply| Command::Complete { step_id, attempt: None, outcome, reply }, CALL_TIMEOUT)
    }

    /// Records the outcome of attempt `attempt` of a leased step (uploader). Refused with
    /// [`QueueError::LeaseLost`] when that lease has ended (given back by a shutdown, or reclaimed after it expired
    /// and leased again), so a late answer cannot overwrite a newer attempt.
    pub fn complete_lease(&self, step_id: i64, attempt: u32, outcome: Outcome) -> Result<(), QueueError> {
        self.call(|reply| Command::Complete { step_id, attempt: Some(attempt), outcome, reply }, CALL_TIMEOUT)
    }

    /// Gives a leased step back without an outcome (the uploader was stopped while a call was blocked): pending
    /// again, the attempt counted, and counted as unanswered when `sent` (its whole body had gone out).
    pub fn release_lease(&self, step_id: i64, attempt: u32, sent: bool) -> Result<(), QueueError> {
        self.call(|reply| Command::ReleaseLease { step_id, attempt, sent, reply }, CALL_TIMEOUT)
    }

    /// Replaces a leased step's images with smaller re-encodings (uploader, after a 413).
    pub fn replace_images(&self, step_id: i64, images: Vec<(ImageRole, UploadJpeg)>) -> Result<(), QueueError> {
        self.call(|reply| Command::ReplaceImages { step_id, images, reply }, ENQUEUE_TIMEOUT)
    }

    /// Records whether the API is rejecting the key (shown by `queue status`, alerted to subscribers).
    pub fn set_key_rejected(&self, rejected: bool) -> Result<(), QueueError> {
        self.call(|r| Command::KeyRejected(rejected, r), CALL_TIMEOUT)
    }

    /// Clears an alert an operator has seen (a quarantined database, expiry purges); `true` if there was one.
    pub fn acknowledge(&self, which: Acknowledgeable) -> Result<bool, QueueError> {
        self.call(|r| Command::Acknowledge(which, r), CALL_TIMEOUT)
    }

    /// Records whether TLS with the API is failing (shown by `queue status`, alerted to subscribers).
    pub fn set_tls_failed(&self, failed: bool) -> Result<(), QueueError> {
        self.call(|r| Command::TlsFailed(failed, r), CALL_TIMEOUT)
    }

    /// Records whether the bank's gateway refuses this kiosk's certificate (shown by `queue status`, alerted to
    /// subscribers).
    pub fn set_certificate_refused(&self, refused: bool) -> Result<(), QueueError> {
        self.call(|r| Command::CertificateRefused(refused, r), CALL_TIMEOUT)
    }

    /// Enrollments still to send (pending or in flight).
    pub fn sendable(&self) -> Result<u64, QueueError> {
        self.call(Command::Sendable, CALL_TIMEOUT)
    }

    /// `PRAGMA integrity_check`.
    pub fn integrity_check(&self) -> Result<String, QueueError> {
        self.call(Command::IntegrityCheck, Duration::from_secs(120))
    }

    /// A reader that streams image `image` (`len` plaintext bytes) from the queue thread, decrypting as it goes.
    pub fn image_reader(&self, image: i64, len: u64) -> ImageReader {
        ImageReader { handle: self.clone(), image, len, index: 0, buf: Vec::new(), pos: 0, read: 0 }
    }

    /// Stops the queue thread and waits for it (every committed change is already durable).
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
        let join = self.join.lock().ok().and_then(|mut j| j.take());
        if let Some(j) = join {
            let _ = j.join();
        }
    }
}

/// Streams one image's plaintext from the queue thread, 64 KiB at a time. `Send`, so it can be handed to
/// `ImageBody::from_reader(Box::new(reader), len)`.
pub struct ImageReader {
    handle: QueueHandle,
    image: i64,
    len: u64,
    index: u32,
    buf: Vec<u8>,
    pos: usize,
    read: u64,
}

impl ImageReader {
    /// The image's plaintext length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::io::Read for ImageReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.read >= self.len {
                return Ok(0);
            }
            let (image, index) = (self.image, self.index);
            let chunk = self
                .handle
                .call(|reply| Command::ReadChunk { image, index, reply }, CALL_TIMEOUT)
                .map_err(std::io::Error::other)?;
            if chunk.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "stored image is shorter than recorded",
                ));
            }
            self.index += 1;
            self.buf = chunk;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.read += n as u64;
        Ok(n)
    }
}

struct Hub {
    subscribers: Vec<SyncSender<Event>>,
    wakers: Vec<SyncSender<()>>,
}

impl Hub {
    fn emit(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            self.subscribers.retain(|s| match s.try_send(e.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    log::warn!("an event subscriber is not keeping up; an event was dropped for it");
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        }
    }
    fn wake(&mut self) {
        self.wakers.retain(|w| !matches!(w.try_send(()), Err(TrySendError::Disconnected(_))));
    }
}

fn run(mut store: Store, rx: Receiver<Command>, tick: Duration) {
    let mut hub = Hub { subscribers: Vec::new(), wakers: Vec::new() };
    let mut next_tick = Instant::now() + tick;
    if let Some(r) = store.locked() {
        hub.emit([Event::Alert { alert: Alert::Locked { reason: r } }]);
    }
    loop {
        let now = Instant::now();
        if now >= next_tick {
            match store.reclaim_expired_leases() {
                Ok(0) => {}
                Ok(_) => hub.wake(),
                Err(e) => log::error!("cannot reclaim expired leases: {e}"),
            }
            match store.tick_retention() {
                Ok(events) => hub.emit(events),
                Err(e) => log::error!("retention check failed: {e}"),
            }
            next_tick = now + tick;
        }
        let cmd = match rx.recv_timeout(next_tick.saturating_duration_since(now)) {
            Ok(c) => c,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match cmd {
            Command::Enqueue(new, reply) => {
                let r = store.enqueue(&new);
                drop(new);
                if let Ok(e) = &r {
                    hub.emit([Event::Saved { id: e.id, reference: e.reference.clone() }]);
                    hub.wake();
                }
                let _ = reply.send(r);
            }
            Command::Status(reply) => {
                let _ = reply.send(store.status());
            }
            Command::List(reply) => {
                let _ = reply.send(store.list());
            }
            Command::Show(id, reply) => {
                let _ = reply.send(store.show(&id));
            }
            Command::Retry(id, reply) => {
                let r = store.retry(&id);
                if r.is_ok() {
                    hub.wake();
                }
                let _ = reply.send(r);
            }
            Command::Purge(id, reply) => {
                let r = store.purge(&id, PurgeReason::Operator);
                if let Ok(e) = &r {
                    hub.emit([e.clone()]);
                }
                let _ = reply.send(r);
            }
            Command::Subscribe(s) => hub.subscribers.push(s),
            Command::RegisterWaker(w) => hub.wakers.push(w),
            Command::Lease(reply) => {
                let r = store.lease_next().map(|r| match r {
                    Ok(lease) => LeaseAnswer::Step(Box::new(lease)),
                    Err(Some(d)) => LeaseAnswer::Wait(d),
                    Err(None) => LeaseAnswer::Idle,
                });
                if let Ok(LeaseAnswer::Step(l)) = &r {
                    hub.emit([Event::StepStarted {
                        id: l.enrollment_id,
                        reference: l.reference.clone(),
                        step: l.kind,
                        attempt: l.attempt,
                    }]);
                }
                let _ = reply.send(r);
            }
            Command::ReadChunk { image, index, reply } => {
                let _ = reply.send(store.read_chunk(image, index));
            }
            Command::Complete { step_id, attempt, outcome, reply } => {
                match store.complete_lease(step_id, attempt, &outcome) {
                    Ok(events) => {
                        hub.emit(events);
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::ReleaseLease { step_id, attempt, sent, reply } => {
                let r = store.release_lease(step_id, attempt, sent);
                if r.is_ok() {
                    hub.wake();
                }
                let _ = reply.send(r);
            }
            Command::ReplaceImages { step_id, images, reply } => {
                let _ = reply.send(store.replace_images(step_id, &images));
            }
            Command::KeyRejected(rejected, reply) => {
                let r = store.set_key_rejected(rejected);
                if r.is_ok() {
                    let alert = if rejected { Alert::ApiKeyRejected } else { Alert::ApiKeyAccepted };
                    hub.emit([Event::Alert { alert }]);
                }
                let _ = reply.send(r);
            }
            Command::Acknowledge(which, reply) => {
                let _ = reply.send(store.acknowledge(which));
            }
            Command::TlsFailed(failed, reply) => {
                let r = store.set_tls_failed(failed);
                if r.is_ok() {
                    let alert = if failed { Alert::TlsFailed } else { Alert::TlsRecovered };
                    hub.emit([Event::Alert { alert }]);
                }
                let _ = reply.send(r);
            }
            Command::CertificateRefused(refused, reply) => {
                let r = store.set_certificate_refused(refused);
                if r.is_ok() {
                    let alert = if refused { Alert::CertificateRefused } else { Alert::CertificateAccepted };
                    hub.emit([Event::Alert { alert }]);
                }
                let _ = reply.send(r);
            }
            Command::Sendable(reply) => {
                let _ = reply.send(store.sendable());
            }
            Command::IntegrityCheck(reply) => {
                let _ = reply.send(store.integrity_check());
            }
            Command::Shutdown => break,
        }
    }
    log::debug!("queue thread stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{Email, Phone};
    use crate::queue::crypto::QueueKey;
    use crate::queue::{State, StepKind};
    use std::io::Read;

    #[test]
    fn handle_enqueues_streams_images_and_broadcasts_committed_events() {
        let store =
            Store::open_in_memory(QueueKey::from_bytes(&[3; 32]), &QueueConfig::default(), Duration::from_secs(60))
                .unwrap();
        let q = QueueHandle::spawn(store, Duration::from_secs(60)).unwrap();
        let events = q.subscribe().unwrap();
        let wake = q.register_waker().unwrap();
        let front: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let new = NewEnrollment {
            email: Email::parse("ada@example.com").unwrap(),
            phone: Phone::parse("+44 20 7946 0958").unwrap(),
            front: UploadJpeg::for_tests(front.clone(), 10, 10),
            back: None,
            side: None,
            face: UploadJpeg::for_tests(vec![1, 2, 3], 1, 1),
        };
        let e = q.enqueue(new).unwrap();
        assert_eq!(
            events.recv_timeout(Duration::from_secs(5)).unwrap(),
            Event::Saved { id: e.id, reference: e.reference.clone() }
        );
        wake.recv_timeout(Duration::from_secs(5)).unwrap();
        let LeaseAnswer::Step(l) = q.lease().unwrap() else { panic!("nothing to lease") };
        assert_eq!(l.kind, StepKind::Document);
        assert!(matches!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Event::StepStarted { .. }));
        let img = &l.images[0];
        let mut r = q.image_reader(img.id, img.len);
        let mut got = Vec::new();
        let mut small = [0u8; 1000];
        // Small reads cross chunk boundaries.
        loop {
            let n = r.read(&mut small).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, front);
        q.complete(l.step_id, Outcome::Done { document_id: Some("d".into()), score: None }).unwrap();
        assert!(matches!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Event::StepDone { .. }));
        assert_eq!(q.show(&e.reference).unwrap().summary.state, State::Pending);
        assert_eq!(q.sendable().unwrap(), 1);
        q.shutdown();
        assert!(matches!(q.status(), Err(QueueError::Stopped)));
    }
}
