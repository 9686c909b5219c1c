//! The uploader: a worker thread that owns the API transport and drains the queue. It leases due steps from the
//! queue thread (document, then face, then request for each enrollment; enrollments in turn), streams their images
//! back from the encrypted store while sending, decides what each failure means ([`decide`], a pure function) and
//! reports the outcome, which the queue thread commits and broadcasts as events.
//!
//! Retry policy: jittered exponential backoff with `Retry-After` honoured up to the cap, plus a global retry budget
//! (a token bucket) so a storm of server errors never turns into a tight loop. Delays are measured on the monotonic
//! clock. A rejected API key pauses all sending (one alert, no rows failed) and is probed again periodically.

use crate::api::{ErrorClass, ErrorCode};
use crate::contact::{Email, Phone};
use crate::queue::{Backoff, Lease, LeaseAnswer, Outcome, QueueError, QueueHandle, RetryBudget, StepKind};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `[uploader]`: retries and backoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploaderConfig {
    /// Delay before the first retry; doubles per failure (with jitter) up to `retry_cap`.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest delay between retries, and the most a `Retry-After` is honoured.
    #[serde(with = "humantime_serde")]
    pub retry_cap: Duration,
    /// Retries allowed at once by the global budget.
    pub retry_burst: u32,
    /// One more retry is allowed every this long.
    #[serde(with = "humantime_serde")]
    pub retry_refill: Duration,
    /// How often sending is tried again while the API rejects the key.
    #[serde(with = "humantime_serde")]
    pub key_probe_interval: Duration,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig {
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(15 * 60),
            retry_burst: 10,
            retry_refill: Duration::from_secs(5),
            key_probe_interval: Duration::from_secs(5 * 60),
        }
    }
}

impl UploaderConfig {
    /// The backoff these settings describe.
    pub fn backoff(&self) -> Backoff {
        Backoff { base: self.retry_base, cap: self.retry_cap.max(self.retry_base) }
    }
}

/// Why the uploader could not start.
#[derive(Debug, thiserror::Error)]
pub enum UploaderError {
    /// The thread could not be started.
    #[error("cannot start the uploader thread: {0}")]
    Spawn(std::io::Error),
    /// The queue refused.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// An image to send: a reader and its exact length in bytes.
pub struct ImageSource {
    /// The JPEG bytes, streamed.
    pub reader: Box<dyn Read + Send>,
    /// Exact length.
    pub len: u64,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSource").field("len", &self.len).finish_non_exhaustive()
    }
}

/// A failed call, reduced to what the retry policy needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    /// The stable error code.
    pub code: ErrorCode,
    /// Its class.
    pub class: ErrorClass,
    /// HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// The server's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The body was sent but no answer came.
    pub ambiguous: bool,
    /// A short safe description for the log (no secrets, no contact details).
    pub message: String,
}

/// The calls the uploader makes. Implemented for the real API client; tests use their own.
pub trait Transport: Send {
    /// E1: uploads the document sides; returns the document id.
    fn upload_document(
        &self,
        front: ImageSource,
        back: Option<ImageSource>,
        side: Option<ImageSource>,
    ) -> Result<String, SendFailure>;
    /// E2: matches the face against the document; returns the score.
    fn match_face(&self, document_id: &str, face: ImageSource) -> Result<f64, SendFailure>;
    /// E4: creates the eKYC request.
    fn create_request(&self, email: &Email, phone: &Phone, document_id: &str) -> Result<(), SendFailure>;
    /// The request with this email and phone that already exists (pending or accepted), if one does.
    fn existing_request(&self, email: &Email, phone: &Phone) -> Result<Option<ExistingRequest>, SendFailure>;
}

/// What the server says about a request that already holds an applicant's contact details: enough to tell whether
/// it is the one an earlier unanswered send of ours created.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExistingRequest {
    /// The document it was created from, when the API says.
    pub document_id: Option<String>,
    /// Its face-match score, when the API says.
    pub face_match: Option<f64>,
}

impl ExistingRequest {
    /// Whether this is the request our send for `document_id` (whose face match scored `score`) created: the same
    /// document id when the API gives one; otherwise the same face-match score, which the server computed for that
    /// document. Without either, nothing shows it is ours (the same contact details may have been used by someone
    /// else, or on another kiosk).
    pub fn is_ours(&self, document_id: Option<&str>, score: Option<f64>) -> bool {
        match (&self.document_id, document_id) {
            (Some(theirs), Some(ours)) => theirs == ours,
            (Some(_), None) => false,
            (None, _) => matches!((self.face_match, score), (Some(a), Some(b)) if a == b),
        }
    }
}

/// What to do about a failed step.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Record this outcome.
    Record(Outcome),
    /// The API rejected the key: pause everything.
    PauseForKey,
    /// The TLS handshake with the API failed (untrusted, expired or wrong-host certificate): pause everything with
    /// an operator alert; retrying each row alone would only hide it.
    PauseForTls,
    /// The bank's gateway refused this kiosk's certificate: pause everything with an operator alert until it is
    /// fixed (the client loads a renewed certificate by itself); nothing is marked for the customer.
    PauseForCertificate,
    /// A 409 after an ambiguous attempt: check whether our earlier send created the request.
    CheckExisting,
    /// A 413: re-encode the step's images smaller and send again.
    Reencode,
}

/// How many times an enrollment's document is uploaded again after the server lost its session; beyond that the
/// session is not expiring but refused, and a person must look.
pub const MAX_DOCUMENT_RESTARTS: u32 = 1;

/// What [`decide`] knows about the attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attempt {
    /// Which step.
    pub step: StepKind,
    /// This attempt's number (1 = first).
    pub number: u32,
    /// Earlier sends of this step that got no answer.
    pub ambiguous_before: u32,
    /// Earlier re-uploads of the document after the server lost its session.
    pub document_restarts: u32,
    /// The step's images were already re-encoded smaller after a 413.
    pub reencoded: bool,
}

impl From<&Lease> for Attempt {
    fn from(l: &Lease) -> Attempt {
        Attempt {
            step: l.kind,
            number: l.attempt,
            ambiguous_before: l.ambiguous_before,
            document_restarts: l.document_restarts,
            reencoded: l.reencoded,
        }
    }
}

/// Decides what a failure means. Pure: `jitter` in `[0, 1)` is passed in.
pub fn decide(a: Attempt, f: &SendFailure, backoff: &Backoff, jitter: f64) -> Decision {
    let (step, attempt, ambiguous_before, document_restarts) =
        (a.step, a.number, a.ambiguous_before, a.document_restarts);
    let (code, http_status) = (f.code, f.http_status);
    match code {
        ErrorCode::InvalidApiKey => return Decision::PauseForKey,
        ErrorCode::TlsFailure => return Decision::PauseForTls,
        ErrorCode::CertificateRefused => return Decision::PauseForCertificate,
        // The server's limit is lower than ours: re-encode smaller, once; after that a person must look.
        ErrorCode::PayloadTooLarge if !a.reencoded && matches!(step, StepKind::Document | StepKind::Face) => {
            return Decision::Reencode;
        }
        ErrorCode::PayloadTooLarge => return Decision::Record(Outcome::NeedsUser { code, http_status }),
        ErrorCode::DocumentSessionNotFound
            if step != StepKind::Document && document_restarts < MAX_DOCUMENT_RESTARTS =>
        {
            return Decision::Record(Outcome::RestartDocument { code, http_status });
        }
        ErrorCode::ContactAlreadyUsed if step == StepKind::Request && ambiguous_before > 0 => {
            return Decision::CheckExisting;
        }
        _ => {}
    }
    let ambiguous = f.ambiguous || f.class == ErrorClass::Ambiguous;
    match f.class {
        ErrorClass::CustomerMustAct => Decision::Record(Outcome::NeedsUser { code, http_status }),
        ErrorClass::Fatal => Decision::Record(Outcome::Failed { code, http_status }),
        ErrorClass::Transient | ErrorClass::Ambiguous => Decision::Record(Outcome::Retry {
            code,
            http_status,
            delay: backoff.delay(attempt.max(1), f.retry_after, jitter),
            ambiguous,
        }),
    }
}

/// How long [`Uploader::shutdown`] waits for the thread before it gives up on the call in progress.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The step the uploader thread is sending, shared so that a shutdown which cannot wait for the network can give the
/// step back to the queue itself.
struct InFlight {
    step_id: i64,
    attempt: u32,
    /// Image sources not yet read to their end: zero means the whole body was handed to the connection.
    unread: Arc<AtomicUsize>,
}

/// The running uploader. Dropping it without [`Uploader::shutdown`] leaves the thread running until the queue
/// stops.
pub struct Uploader {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
    /// Disconnected when the thread ends: lets a shutdown wait for it with a deadline.
    ended: mpsc::Receiver<()>,
    current: Arc<Mutex<Option<InFlight>>>,
    queue: QueueHandle,
}

impl Uploader {
    /// Starts the uploader thread, which owns `transport`.
    pub fn spawn(
        queue: QueueHandle,
        transport: Box<dyn Transport>,
        cfg: &UploaderConfig,
    ) -> Result<Uploader, UploaderError> {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = queue.register_waker()?;
        let current = Arc::new(Mutex::new(None));
        let (ended_tx, ended) = mpsc::channel::<()>();
        let handle = queue.clone();
        // An alert left by an earlier run (the certificate was refused, then the kiosk restarted with a new one) is
        // cleared by the first call that gets through.
        let cert_refused = queue.status().is_ok_and(|s| s.certificate_refused);
        let worker = Worker {
            budget: RetryBudget::new(cfg.retry_burst, cfg.retry_refill, Instant::now()),
            backoff: cfg.backoff(),
            probe: cfg.key_probe_interval,
            queue,
            transport,
            stop: stop.clone(),
            wake,
            rng: fastrand::Rng::new(),
            key_rejected: false,
            tls_failed: false,
            cert_refused,
            current: current.clone(),
            unread: Arc::new(AtomicUsize::new(0)),
        };
        let join = std::thread::Builder::new()
            .name("uploader".into())
            .spawn(move || {
                let _ended = ended_tx;
                worker.run()
            })
            .map_err(UploaderError::Spawn)?;
        Ok(Uploader { stop, join: Some(join), ended, current, queue: handle })
    }

    /// Asks the thread to stop and waits for it, at most [`SHUTDOWN_GRACE`]. An upload whose body is still being
    /// read is cut off at its next chunk and its step released (pending, the attempt not counted). A call blocked in
    /// the network (a slow link, an answer that does not come) is not waited for: its step is given back to the
    /// queue here (pending, the attempt counted as unanswered when its whole body had gone out) and the thread is
    /// left to end on its own; whatever it reports later for that lease is refused by the queue.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        match self.ended.recv_timeout(SHUTDOWN_GRACE) {
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(()) => {
                if let Some(j) = self.join.take() {
                    let _ = j.join();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let held = self.current.lock().ok().and_then(|mut c| c.take());
                if let Some(f) = held {
                    let sent = f.unread.load(Ordering::SeqCst) == 0;
                    log::warn!(
                        "the uploader did not stop within {SHUTDOWN_GRACE:?} (a call is blocked in the network); its \
                         step goes back to the queue{}",
                        if sent { " and counts as an unanswered send" } else { "" }
                    );
                    if let Err(e) = self.queue.release_lease(f.step_id, f.attempt, sent) {
                        log::error!("cannot give the step back to the queue: {e}; it is reclaimed when its lease ends");
                    }
                }
                // The thread ends when its call returns (or with the process); it is not joined.
                drop(self.join.take());
            }
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DrainResult {
    /// Nothing is left to send (what remains needs a person).
    pub drained: bool,
    /// Enrollments still to send.
    pub remaining: u64,
}

/// Waits until the queue has nothing left to send or `deadline` passes (the uploader must be running).
pub fn wait_drained(queue: &QueueHandle, deadline: Instant) -> Result<DrainResult, QueueError> {
    wait_drained_or(queue, deadline, &|| false)
}

/// [`wait_drained`], also ending (with what remains) as soon as `stop` says so (SIGTERM).
pub fn wait_drained_or(
    queue: &QueueHandle,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> Result<DrainResult, QueueError> {
    loop {
        let remaining = queue.sendable()?;
        if remaining == 0 {
            return Ok(DrainResult { drained: true, remaining });
        }
        let now = Instant::now();
        if now >= deadline || stop() {
            return Ok(DrainResult { drained: false, remaining });
        }
        std::thread::sleep(Duration::from_millis(50).min(deadline - now));
    }
}

struct Worker {
    queue: QueueHandle,
    transport: Box<dyn Transport>,
    budget: RetryBudget,
    backoff: Backoff,
    probe: Duration,
    stop: Arc<AtomicBool>,
    wake: std::sync::mpsc::Receiver<()>,
    rng: fastrand::Rng,
    key_rejected: bool,
    tls_failed: bool,
    cert_refused: bool,
    /// The step being sent (see [`Uploader::shutdown`]).
    current: Arc<Mutex<Option<InFlight>>>,
    /// Image sources of the current step not yet read to their end.
    unread: Arc<AtomicUsize>,
}

/// Longest sleep between checks of the stop flag.
const POLL: Duration = Duration::from_millis(100);

impl Worker {
    /// Sleeps up to `d`; a wake-up ends it early unless `wakeable` is false (a pause for a rejected key).
    fn sleep(&self, d: Duration, wakeable: bool) {
        let until = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            // A wake-up (something was enqueued or retried) ends the wait early.
            if self.wake.recv_timeout((until - now).min(POLL)).is_ok() && wakeable {
                return;
            }
        }
    }

    fn run(mut self) {
        log::info!("uploader started");
        while !self.stop.load(Ordering::SeqCst) {
            match self.queue.lease() {
                Ok(LeaseAnswer::Step(lease)) => self.handle(*lease),
                Ok(LeaseAnswer::Wait(d)) => self.sleep(d.max(Duration::from_millis(1)), true),
                Ok(LeaseAnswer::Idle) => self.sleep(Duration::from_secs(60), true),
                Err(QueueError::Stopped) => break,
                Err(e) => {
                    log::error!("uploader cannot lease from the queue: {e}");
                    self.sleep(Duration::from_secs(1), false);
                }
            }
        }
        log::info!("uploader stopped");
    }

    fn complete(&self, lease: &Lease, outcome: Outcome) {
        let held = self.current.lock().ok().and_then(|mut c| c.take());
        if held.is_none() && self.stop.load(Ordering::SeqCst) {
            // A shutdown already gave this step back to the queue.
            log::info!(
                "{} {}: the outcome came after the shutdown and is dropped",
                lease.reference,
                lease.kind.as_str()
            );
            return;
        }
        match self.queue.complete_lease(lease.step_id, lease.attempt, outcome) {
            Ok(()) => {}
            Err(QueueError::LeaseLost(_)) => log::warn!(
                "{} {}: the lease had ended (reclaimed by the queue); this outcome is dropped and the step sent again",
                lease.reference,
                lease.kind.as_str()
            ),
            // The step stays in flight until its lease ends; the queue then reclaims it.
            Err(e) => log::error!("cannot record the outcome of {} {}: {e}", lease.reference, lease.kind.as_str()),
        }
    }

    fn handle(&mut self, lease: Lease) {
        self.unread.store(0, Ordering::SeqCst);
        if let Ok(mut c) = self.current.lock() {
            *c = Some(InFlight { step_id: lease.step_id, attempt: lease.attempt, unread: self.unread.clone() });
        }
        if lease.attempt > 1
            && let Err(wait) = self.budget.try_take(Instant::now())
        {
            log::debug!("retry budget spent; {} {} waits {wait:?}", lease.reference, lease.kind.as_str());
            self.complete(&lease, Outcome::Release { delay: wait });
            return;
        }
        log::info!("sending {} {} (attempt {})", lease.reference, lease.kind.as_str(), lease.attempt);
        let result = self.send(&lease);
        let outcome = match result {
            Ok(outcome) => outcome,
            // The stop cut the body off before it was complete: the server cannot have acted on it, and nobody is to
            // blame. Give the step back as it was.
            Err(f) if f.code == ErrorCode::StoredImageUnreadable && self.stop.load(Ordering::SeqCst) => {
                log::info!(
                    "{} {}: sending cut off by the stop; the step stays queued",
                    lease.reference,
                    lease.kind.as_str()
                );
                Outcome::Release { delay: Duration::ZERO }
            }
            Err(f) => {
                let jitter = self.rng.f64();
                match decide(Attempt::from(&lease), &f, &self.backoff, jitter) {
                    Decision::Record(o) => o,
                    Decision::PauseForKey => {
                        log::error!(error_code = f.code.as_str();
                            "the API rejected the key: sending is paused; fix the key (retrying every {:?})",
                            self.probe
                        );
                        if !self.key_rejected {
                            self.key_rejected = true;
                            if let Err(e) = self.queue.set_key_rejected(true) {
                                log::error!("cannot record the key alert: {e}");
                            }
                        }
                        let pause = Outcome::Pause { code: f.code, http_status: f.http_status, delay: self.probe };
                        self.complete(&lease, pause);
                        self.sleep(self.probe, false);
                        return;
                    }
                    Decision::PauseForTls => {
                        log::error!(error_code = f.code.as_str();
                            "tls with the API failed ({}): sending is paused; check the certificate, the clock and \
                             api.base_url (retrying every {:?})",
                            f.message,
                            self.probe
                        );
                        if !self.tls_failed {
                            self.tls_failed = true;
                            if let Err(e) = self.queue.set_tls_failed(true) {
                                log::error!("cannot record the tls alert: {e}");
                            }
                        }
                        let pause = Outcome::Pause { code: f.code, http_status: f.http_status, delay: self.probe };
                        self.complete(&lease, pause);
                        self.sleep(self.probe, false);
                        return;
                    }
                    Decision::PauseForCertificate => {
                        log::error!(
                            "the gateway refused this kiosk's certificate ({}): sending is paused; fix \
                             api.client_cert_file and api.client_key_file or enrol the kiosk again (retrying every {:?})",
                            f.message,
                            self.probe
                        );
                        if !self.cert_refused {
                            self.cert_refused = true;
                            if let Err(e) = self.queue.set_certificate_refused(true) {
                                log::error!("cannot record the certificate alert: {e}");
                            }
                        }
                        let pause = Outcome::Pause { code: f.code, http_status: f.http_status, delay: self.probe };
                        self.complete(&lease, pause);
                        self.sleep(self.probe, false);
                        return;
                    }
                    Decision::CheckExisting => self.check_existing(&lease, &f),
                    Decision::Reencode => self.reencode(&lease, &f),
                }
            }
        };
        // Any answer, or a failure past the handshake, shows TLS works again; a network failure shows nothing.
        let handshake_unknown =
            matches!(outcome, Outcome::Retry { code: ErrorCode::NetworkUnreachable | ErrorCode::Timeout, .. });
        if self.tls_failed && !handshake_unknown {
            self.tls_failed = false;
            log::info!("tls with the API works again: sending resumed");
            if let Err(e) = self.queue.set_tls_failed(false) {
                log::error!("cannot clear the tls alert: {e}");
            }
        }
        if self.cert_refused && !handshake_unknown {
            self.cert_refused = false;
            log::info!("the gateway accepts this kiosk's certificate again: sending resumed");
            if let Err(e) = self.queue.set_certificate_refused(false) {
                log::error!("cannot clear the certificate alert: {e}");
            }
        }
        if self.key_rejected && !matches!(outcome, Outcome::Retry { .. }) {
            self.key_rejected = false;
            log::info!("the API accepts the key again: sending resumed");
            if let Err(e) = self.queue.set_key_rejected(false) {
                log::error!("cannot clear the key alert: {e}");
            }
        }
        match &outcome {
            Outcome::Done { .. } => log::info!("{} {} done", lease.reference, lease.kind.as_str()),
            Outcome::Retry { code, http_status, delay, ambiguous } => log::warn!(error_code = code.as_str();
                "{} {} failed ({code}, http {http_status:?}{}); retrying in {delay:?}",
                lease.reference,
                lease.kind.as_str(),
                if *ambiguous { ", ambiguous: the server may have it" } else { "" }
            ),
            Outcome::NeedsUser { code, .. } => {
                log::warn!(error_code = code.as_str(); "{} {} needs the customer: {code}", lease.reference, lease.kind.as_str())
            }
            Outcome::Failed { code, .. } => {
                log::error!(error_code = code.as_str(); "{} {} failed for good: {code}", lease.reference, lease.kind.as_str())
            }
            Outcome::RestartDocument { .. } => {
                log::warn!("{}: the server lost the document session; uploading the document again", lease.reference)
            }
            Outcome::Release { .. } | Outcome::Pause { .. } => {}
        }
        self.complete(&lease, outcome);
    }

    fn check_existing(&self, lease: &Lease, f: &SendFailure) -> Outcome {
        let (Some(email), Some(phone)) = (&lease.email, &lease.phone) else {
            return Outcome::NeedsUser { code: f.code, http_status: f.http_status };
        };
        match self.transport.existing_request(email, phone) {
            Ok(Some(r)) if r.is_ours(lease.document_id.as_deref(), lease.face_score) => {
                log::info!("{}: the request from an earlier unanswered send exists; counted as done", lease.reference);
                Outcome::Done { document_id: None, score: None }
            }
            Ok(Some(_)) => {
                log::warn!(
                    "{}: a request with these contact details exists, but not for this application's document",
                    lease.reference
                );
                Outcome::NeedsUser { code: f.code, http_status: f.http_status }
            }
            Ok(None) => Outcome::NeedsUser { code: f.code, http_status: f.http_status },
            // Behind the bank's gateway the kiosk may not read the request list: the back office must look.
            Err(g) if g.code == ErrorCode::KioskNotAllowed => {
                log::warn!(
                    "{}: a request with these contact details exists and this kiosk may not look it up (the gateway \
                     refuses the list); check in the back office whether it is this application's",
                    lease.reference
                );
                Outcome::Failed { code: g.code, http_status: g.http_status }
            }
            Err(g) => Outcome::Retry {
                code: g.code,
                http_status: g.http_status,
                delay: self.backoff.delay(lease.attempt, g.retry_after, 0.5),
                ambiguous: false,
            },
        }
    }

    /// Re-encodes every image of the step at half its size (at most once per step), then sends again at once.
    fn reencode(&self, lease: &Lease, f: &SendFailure) -> Outcome {
        let needs_user = Outcome::NeedsUser { code: f.code, http_status: f.http_status };
        let mut smaller = Vec::new();
        for img in &lease.images {
            let mut bytes = Vec::new();
            if let Err(e) = self.queue.image_reader(img.id, img.len).read_to_end(&mut bytes) {
                log::error!("{}: cannot read an image back to re-encode it: {e}", lease.reference);
                return needs_user;
            }
            let budget = (bytes.len() / 2).max(10_000);
            // Stored bytes are a JPEG that passed the checks when it was saved; rebuild the type, then shrink it.
            let again = crate::encode::UploadJpeg::from_operator_bytes(&bytes, &crate::encode::EncodeConfig::default())
                .and_then(|j| crate::encode::reencode_smaller(&j, budget));
            bytes.iter_mut().for_each(|b| *b = 0);
            match again {
                Ok(j) => smaller.push((img.role, j)),
                Err(e) => {
                    log::warn!("{}: cannot re-encode an image smaller: {e}", lease.reference);
                    return needs_user;
                }
            }
        }
        match self.queue.replace_images(lease.step_id, smaller) {
            Ok(()) => {
                log::info!(
                    "{} {}: images re-encoded smaller after a 413; sending again",
                    lease.reference,
                    lease.kind.as_str()
                );
                Outcome::Retry { code: f.code, http_status: f.http_status, delay: Duration::ZERO, ambiguous: false }
            }
            Err(e) => {
                log::error!("{}: cannot store the re-encoded images: {e}", lease.reference);
                needs_user
            }
        }
    }

    fn image(&self, lease: &Lease, idx: usize) -> Option<ImageSource> {
        let img = lease.images.get(idx)?;
        let reader = self.queue.image_reader(img.id, img.len);
        self.unread.fetch_add(1, Ordering::SeqCst);
        let reader =
            StopReader { inner: reader, stop: self.stop.clone(), left: img.len, unread: Some(self.unread.clone()) };
        Some(ImageSource { reader: Box::new(reader), len: img.len })
    }

    fn send(&self, lease: &Lease) -> Result<Outcome, SendFailure> {
        let missing = |what: &str| {
            log::error!("{} {}: {what}", lease.reference, lease.kind.as_str());
            SendFailure {
                code: ErrorCode::UnexpectedResponse,
                class: ErrorClass::Fatal,
                http_status: None,
                retry_after: None,
                ambiguous: false,
                message: what.to_string(),
            }
        };
        use crate::queue::ImageRole;
        let find = |role: ImageRole| lease.images.iter().position(|i| i.role == role);
        match lease.kind {
            StepKind::Document => {
                let front = find(ImageRole::Front)
                    .and_then(|i| self.image(lease, i))
                    .ok_or_else(|| missing("the document front image is not stored"))?;
                let back = find(ImageRole::Back).and_then(|i| self.image(lease, i));
                let side = find(ImageRole::Side).and_then(|i| self.image(lease, i));
                let id = self.transport.upload_document(front, back, side)?;
                Ok(Outcome::Done { document_id: Some(id), score: None })
            }
            StepKind::Face => {
                let Some(doc) = &lease.document_id else {
                    return Ok(Outcome::RestartDocument {
                        code: ErrorCode::DocumentSessionNotFound,
                        http_status: None,
                    });
                };
                let face = find(ImageRole::Face)
                    .and_then(|i| self.image(lease, i))
                    .ok_or_else(|| missing("the face image is not stored"))?;
                let score = self.transport.match_face(doc, face)?;
                Ok(Outcome::Done { document_id: None, score: Some(score) })
            }
            StepKind::Request => {
                let Some(doc) = &lease.document_id else {
                    return Ok(Outcome::RestartDocument {
                        code: ErrorCode::DocumentSessionNotFound,
                        http_status: None,
                    });
                };
                let (Some(email), Some(phone)) = (&lease.email, &lease.phone) else {
                    return Err(missing("the stored contact details no longer validate"));
                };
                self.transport.create_request(email, phone, doc)?;
                Ok(Outcome::Done { document_id: None, score: None })
            }
            StepKind::Liveness => Err(missing("liveness clips are not stored by this version")),
        }
    }
}

/// Cuts an upload off when the uploader is asked to stop, and says when its source has been read to the end.
struct StopReader<R> {
    inner: R,
    stop: Arc<AtomicBool>,
    /// Bytes not yet read.
    left: u64,
    /// Decremented (once) when the last byte has been read.
    unread: Option<Arc<AtomicUsize>>,
}

impl<R: Read> Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::SeqCst) && self.left > 0 {
            return Err(std::io::Error::other("the uploader is stopping"));
        }
        let n = self.inner.read(buf)?;
        self.left = self.left.saturating_sub(n as u64);
        if self.left == 0
            && let Some(u) = self.unread.take()
        {
            u.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(n)
    }
}

/// Reduces an API error to what the retry policy needs.
fn failure_of(e: &crate::api::ApiError) -> SendFailure {
    SendFailure {
        code: e.code(),
        class: e.class(),
        http_status: e.http_status(),
        retry_after: e.retry_after(),
        ambiguous: e.is_ambiguous(),
        message: e.to_string(),
    }
}

fn body(src: ImageSource) -> crate::api::ImageBody<'static> {
    crate::api::ImageBody::from_reader(src.reader, src.len)
}

impl Transport for crate::api::ApiClient {
    fn upload_document(
        &self,
        front: ImageSource,
        back: Option<ImageSource>,
        side: Option<ImageSource>,
    ) -> Result<String, SendFailure> {
        let doc = crate::api::DocumentUpload { front: body(front), back: back.map(body), side: side.map(body) };
        crate::api::ApiClient::upload_document(self, doc).map(|r| r.document_id).map_err(|e| failure_of(&e))
    }

    fn match_face(&self, document_id: &str, face: ImageSource) -> Result<f64, SendFailure> {
        crate::api::ApiClient::match_face(self, document_id, body(face)).map(|r| r.score).map_err(|e| failure_of(&e))
    }

    fn create_request(&self, email: &Email, phone: &Phone, document_id: &str) -> Result<(), SendFailure> {
        let req =
            crate::api::NewRequest { email: email.clone(), phone: phone.clone(), document_id: document_id.to_string() };
        crate::api::ApiClient::create_request(self, &req).map_err(|e| failure_of(&e))
    }

    fn existing_request(&self, email: &Email, phone: &Phone) -> Result<Option<ExistingRequest>, SendFailure> {
        self.find_request(email, phone)
            .map(|r| r.map(|r| ExistingRequest { document_id: r.document_id, face_match: r.face_match }))
            .map_err(|e| failure_of(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: ErrorCode, class: ErrorClass, status: Option<u16>, ambiguous: bool) -> SendFailure {
        SendFailure { code, class, http_status: status, retry_after: None, ambiguous, message: String::new() }
    }

    #[test]
    fn decisions_by_code_and_class() {
        use ErrorClass::*;
        use ErrorCode::*;
        use StepKind::*;
        let b = Backoff { base: Duration::from_secs(2), cap: Duration::from_secs(900) };
        let retry = |code, st, d: u64, amb| {
            Decision::Record(Outcome::Retry { code, http_status: st, delay: Duration::from_secs(d), ambiguous: amb })
        };
        // (step, attempt, ambiguous_before, failure, expected) with jitter 1.0 (the nominal delay), no document
        // restarts yet.
        let table: Vec<(StepKind, u32, u32, SendFailure, Decision)> = vec![
            (Document, 1, 0, failure(InvalidApiKey, Fatal, Some(401), false), Decision::PauseForKey),
            (Request, 3, 0, failure(InvalidApiKey, Fatal, Some(401), false), Decision::PauseForKey),
            // An untrusted certificate is not "no network": everything pauses with an operator alert.
            (Document, 1, 0, failure(TlsFailure, Transient, None, false), Decision::PauseForTls),
            (Document, 1, 0, failure(CertificateRefused, Transient, Some(400), false), Decision::PauseForCertificate),
            (Request, 2, 0, failure(CertificateRefused, Transient, None, false), Decision::PauseForCertificate),
            (
                Request,
                1,
                0,
                failure(KioskNotAllowed, Fatal, Some(403), false),
                Decision::Record(Outcome::Failed { code: KioskNotAllowed, http_status: Some(403) }),
            ),
            (
                Document,
                1,
                0,
                failure(DocumentNotRecognized, CustomerMustAct, Some(400), false),
                Decision::Record(Outcome::NeedsUser { code: DocumentNotRecognized, http_status: Some(400) }),
            ),
            (
                Document,
                1,
                0,
                failure(ServerError, Transient, Some(503), false),
                retry(ServerError, Some(503), 2, false),
            ),
            (Face, 4, 0, failure(ServerError, Transient, Some(500), false), retry(ServerError, Some(500), 16, false)),
            (Face, 2, 0, failure(Timeout, Ambiguous, None, true), retry(Timeout, None, 4, true)),
            (
                Face,
                1,
                0,
                failure(DocumentSessionNotFound, CustomerMustAct, Some(400), false),
                Decision::Record(Outcome::RestartDocument { code: DocumentSessionNotFound, http_status: Some(400) }),
            ),
            (
                Request,
                1,
                0,
                failure(DocumentSessionNotFound, CustomerMustAct, Some(400), false),
                Decision::Record(Outcome::RestartDocument { code: DocumentSessionNotFound, http_status: Some(400) }),
            ),
            (
                Request,
                2,
                0,
                failure(ContactAlreadyUsed, CustomerMustAct, Some(409), false),
                Decision::Record(Outcome::NeedsUser { code: ContactAlreadyUsed, http_status: Some(409) }),
            ),
            (Request, 2, 1, failure(ContactAlreadyUsed, CustomerMustAct, Some(409), false), Decision::CheckExisting),
            (Document, 1, 0, failure(PayloadTooLarge, CustomerMustAct, Some(413), false), Decision::Reencode),
            (
                Request,
                1,
                0,
                failure(PayloadTooLarge, CustomerMustAct, Some(413), false),
                Decision::Record(Outcome::NeedsUser { code: PayloadTooLarge, http_status: Some(413) }),
            ),
            (
                Document,
                1,
                0,
                failure(UnexpectedResponse, Fatal, Some(418), false),
                Decision::Record(Outcome::Failed { code: UnexpectedResponse, http_status: Some(418) }),
            ),
        ];
        for (step, attempt, amb, f, want) in table {
            let a = Attempt { step, number: attempt, ambiguous_before: amb, ..Attempt::default() };
            assert_eq!(decide(a, &f, &b, 1.0), want, "{step:?} attempt {attempt} {f:?}");
        }
        // A session lost again right after a fresh upload is not an expiry: a person must look.
        let lost = failure(DocumentSessionNotFound, CustomerMustAct, Some(400), false);
        let a = Attempt { step: Face, number: 1, document_restarts: MAX_DOCUMENT_RESTARTS, ..Attempt::default() };
        assert_eq!(
            decide(a, &lost, &b, 1.0),
            Decision::Record(Outcome::NeedsUser { code: DocumentSessionNotFound, http_status: Some(400) })
        );
        // A 413 re-encodes once, then needs a person.
        let big = failure(PayloadTooLarge, CustomerMustAct, Some(413), false);
        let a = Attempt { step: Document, number: 1, ..Attempt::default() };
        assert_eq!(decide(a, &big, &b, 1.0), Decision::Reencode);
        let a = Attempt { reencoded: true, ..a };
        assert_eq!(
            decide(a, &big, &b, 1.0),
            Decision::Record(Outcome::NeedsUser { code: PayloadTooLarge, http_status: Some(413) })
        );
        // Retry-After is honoured and capped.
        let mut f = failure(ServerError, Transient, Some(429), false);
        f.retry_after = Some(Duration::from_secs(120));
        let first = Attempt { step: Document, number: 1, ..Attempt::default() };
        assert_eq!(decide(first, &f, &b, 0.0), retry(ServerError, Some(429), 120, false));
        f.retry_after = Some(Duration::from_secs(86_400));
        assert_eq!(decide(first, &f, &b, 0.0), retry(ServerError, Some(429), 900, false));
    }

    use crate::contact::{Email, Phone};
    use crate::encode::UploadJpeg;
    use crate::queue::crypto::QueueKey;
    use crate::queue::{Event, NewEnrollment, QueueConfig, State, Store};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Scripted answers per endpoint (then success); every call and the bytes it read are recorded.
    #[derive(Default)]
    struct Script {
        document: VecDeque<SendFailure>,
        face: VecDeque<SendFailure>,
        request: VecDeque<SendFailure>,
        existing: Option<ExistingRequest>,
        /// Document uploads whose images sum to more than this get a 413.
        document_limit: Option<usize>,
        calls: Vec<(&'static str, Instant)>,
        bytes: Vec<Vec<u8>>,
        /// A slow link: each 8 KiB read of an image takes this long.
        read_pause: Option<Duration>,
        /// The body went out, then no answer comes for this long (the call is blocked in the network).
        hang_after_body: Option<Duration>,
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Script>>);

    impl Fake {
        /// Reads an image the way the real client does: a failing source fails the call with `ImageUnreadable`.
        fn drain(&self, mut src: ImageSource, endpoint: crate::api::Endpoint) -> Result<Vec<u8>, SendFailure> {
            let pause = self.0.lock().unwrap().read_pause;
            let mut v = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
                match src.reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => v.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        return Err(failure_of(&crate::api::ApiError::ImageUnreadable {
                            endpoint,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            assert_eq!(v.len() as u64, src.len);
            Ok(v)
        }

        /// The whole body went out: wait for an answer that may not come.
        fn hang(&self) {
            let hang = self.0.lock().unwrap().hang_after_body;
            if let Some(h) = hang {
                std::thread::sleep(h);
            }
        }
    }

    impl Transport for Fake {
        fn upload_document(
            &self,
            front: ImageSource,
            back: Option<ImageSource>,
            _side: Option<ImageSource>,
        ) -> Result<String, SendFailure> {
            let f = self.drain(front, crate::api::Endpoint::Document)?;
            let b = back.map(|b| self.drain(b, crate::api::Endpoint::Document)).transpose()?;
            self.hang();
            let mut s = self.0.lock().unwrap();
            s.calls.push(("document", Instant::now()));
            let total = f.len() + b.as_ref().map_or(0, Vec::len);
            s.bytes.push(f);
            s.bytes.extend(b);
            if s.document_limit.is_some_and(|l| total > l) {
                return Err(failure(ErrorCode::PayloadTooLarge, ErrorClass::CustomerMustAct, Some(413), false));
            }
            match s.document.pop_front() {
                Some(e) => Err(e),
                None => Ok(format!("doc-{}", s.calls.len())),
            }
        }
        fn match_face(&self, _doc: &str, face: ImageSource) -> Result<f64, SendFailure> {
            let f = self.drain(face, crate::api::Endpoint::Face)?;
            let mut s = self.0.lock().unwrap();
            s.calls.push(("face", Instant::now()));
            s.bytes.push(f);
            s.face.pop_front().map_or(Ok(0.97), Err)
        }
        fn create_request(&self, _e: &Email, _p: &Phone, _doc: &str) -> Result<(), SendFailure> {
            let mut s = self.0.lock().unwrap();
            s.calls.push(("request", Instant::now()));
            s.request.pop_front().map_or(Ok(()), Err)
        }
        fn existing_request(&self, _e: &Email, _p: &Phone) -> Result<Option<ExistingRequest>, SendFailure> {
            let mut s = self.0.lock().unwrap();
            s.calls.push(("exists", Instant::now()));
            Ok(s.existing.clone())
        }
    }

    fn cfg() -> UploaderConfig {
        UploaderConfig {
            retry_base: Duration::from_millis(20),
            retry_cap: Duration::from_millis(200),
            retry_burst: 3,
            retry_refill: Duration::from_millis(100),
            key_probe_interval: Duration::from_millis(300),
        }
    }

    fn setup(fake: &Fake, cfg: &UploaderConfig) -> (QueueHandle, Uploader) {
        let store =
            Store::open_in_memory(QueueKey::from_bytes(&[5; 32]), &QueueConfig::default(), cfg.retry_cap).unwrap();
        let q = QueueHandle::spawn(store, Duration::from_secs(60)).unwrap();
        let up = Uploader::spawn(q.clone(), Box::new(fake.clone()), cfg).unwrap();
        (q, up)
    }

    fn enrollment(seed: u8) -> NewEnrollment {
        let img = |n: u8, len: usize| UploadJpeg::for_tests((0..len).map(|i| (i as u8) ^ n).collect(), 8, 8);
        NewEnrollment {
            email: Email::parse(&format!("u{seed}@example.com")).unwrap(),
            phone: Phone::parse(&format!("+3361234{seed:04}")).unwrap(),
            front: img(seed, 150_000),
            back: Some(img(seed ^ 0x55, 70_000)),
            side: None,
            face: img(seed ^ 0xAA, 20_000),
        }
    }

    fn wait_for(events: &std::sync::mpsc::Receiver<Event>, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("event not seen in time"),
            }
        }
    }

    #[test]
    fn drains_in_order_with_the_stored_bytes_and_retries_within_bounds() {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            for _ in 0..2 {
                s.document.push_back(failure(ErrorCode::ServerError, ErrorClass::Transient, Some(503), false));
            }
            s.face.push_back(failure(ErrorCode::Timeout, ErrorClass::Ambiguous, None, true));
        }
        let c = cfg();
        let (q, up) = setup(&fake, &c);
        let events = q.subscribe().unwrap();
        let n = enrollment(1);
        let e = q.enqueue(n.clone()).unwrap();
        let done = wait_for(&events, |e| matches!(e, Event::Done { .. }));
        assert_eq!(
            done,
            Event::Done {
                id: e.id,
                reference: e.reference.clone(),
                document_id: Some("doc-3".into()),
                face_score: Some(0.97)
            }
        );
        let s = fake.0.lock().unwrap();
        let kinds: Vec<_> = s.calls.iter().map(|c| c.0).collect();
        assert_eq!(kinds, ["document", "document", "document", "face", "face", "request"]);
        assert_eq!(s.bytes[0], n.front.bytes());
        assert_eq!(s.bytes[1], n.back.as_ref().unwrap().bytes());
        assert!(s.bytes.iter().any(|b| b == n.face.bytes()));
        // The gaps between retries respect the backoff's lower bounds.
        let b = c.backoff();
        for (i, failures) in [(1usize, 1u32), (2, 2), (4, 1)] {
            let gap = s.calls[i].1 - s.calls[i - 1].1;
            assert!(gap >= b.bounds(failures).0, "retry {i}: {gap:?}");
        }
        drop(s);
        let d = q.show(&e.reference).unwrap();
        assert_eq!(d.summary.state, State::Done);
        assert_eq!(d.steps[1].ambiguous, 1);
        up.shutdown();
        q.shutdown();
    }

    #[test]
    fn a_409_after_an_ambiguous_send_counts_as_done_only_when_the_request_is_ours() {
        let with_doc = |d: &str| Some(ExistingRequest { document_id: Some(d.into()), face_match: Some(0.5) });
        // (what the server has, counted as done). The fake's document id is "doc-1" and its face score 0.97.
        let cases = [
            (with_doc("doc-1"), true),
            (with_doc("someone-elses-document"), false),
            (Some(ExistingRequest { document_id: None, face_match: Some(0.97) }), true),
            (Some(ExistingRequest { document_id: None, face_match: Some(0.42) }), false),
            (Some(ExistingRequest::default()), false),
            (None, false),
        ];
        for (existing, exists) in cases {
            let fake = Fake::default();
            {
                let mut s = fake.0.lock().unwrap();
                s.request.push_back(failure(ErrorCode::Timeout, ErrorClass::Ambiguous, None, true));
                s.request.push_back(failure(
                    ErrorCode::ContactAlreadyUsed,
                    ErrorClass::CustomerMustAct,
                    Some(409),
                    false,
                ));
                s.existing = existing.clone();
            }
            let (q, up) = setup(&fake, &cfg());
            let events = q.subscribe().unwrap();
            let e = q.enqueue(enrollment(2)).unwrap();
            let ev = wait_for(&events, |e| matches!(e, Event::Done { .. } | Event::NeedsUser { .. }));
            if exists {
                assert!(matches!(ev, Event::Done { .. }), "{existing:?}: {ev:?}");
            } else {
                assert!(
                    matches!(ev, Event::NeedsUser { code: ErrorCode::ContactAlreadyUsed, .. }),
                    "{existing:?}: {ev:?}"
                );
            }
            assert_eq!(q.status().unwrap().ambiguous_sends, 1);
            let calls: Vec<_> = fake.0.lock().unwrap().calls.iter().map(|c| c.0).collect();
            assert_eq!(calls, ["document", "face", "request", "request", "exists"]);
            drop(e);
            up.shutdown();
            q.shutdown();
        }
    }

    #[test]
    fn a_rejected_key_pauses_everything_without_failing_rows() {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.document.push_back(failure(ErrorCode::InvalidApiKey, ErrorClass::Fatal, Some(401), false));
        }
        let (q, up) = setup(&fake, &cfg());
        let events = q.subscribe().unwrap();
        let a = q.enqueue(enrollment(3)).unwrap();
        let _b = q.enqueue(enrollment(4)).unwrap();
        wait_for(&events, |e| matches!(e, Event::Alert { alert: crate::queue::Alert::ApiKeyRejected }));
        assert!(q.status().unwrap().alerts.iter().any(|a| a.contains("rejected the key")));
        // Paused: only one call was made while paused, and no row failed.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(fake.0.lock().unwrap().calls.len(), 1);
        assert_eq!(q.show(&a.reference).unwrap().summary.state, State::Pending);
        // After the probe interval the key works again: both complete and the alert clears.
        wait_for(&events, |e| matches!(e, Event::Alert { alert: crate::queue::Alert::ApiKeyAccepted }));
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(wait_drained(&q, deadline).unwrap().drained);
        assert!(!q.status().unwrap().alerts.iter().any(|a| a.contains("rejected the key")));
        up.shutdown();
        q.shutdown();
    }

    #[test]
    fn a_5xx_storm_is_limited_by_the_retry_budget() {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            for _ in 0..1000 {
                s.document.push_back(failure(ErrorCode::ServerError, ErrorClass::Transient, Some(500), false));
            }
        }
        // A tiny backoff, so only the budget (3 at once, then one per 100 ms) limits the retries.
        let c = UploaderConfig { retry_base: Duration::from_millis(1), retry_cap: Duration::from_millis(2), ..cfg() };
        let (q, up) = setup(&fake, &c);
        for i in 0..5 {
            q.enqueue(enrollment(10 + i)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1000));
        up.shutdown();
        let calls = fake.0.lock().unwrap().calls.len();
        // 5 first attempts + 3 burst + about 10 refills in one second.
        assert!((8..=20).contains(&calls), "{calls} calls in one second");
        q.shutdown();
    }

    #[test]
    fn a_413_re_encodes_once_then_needs_a_person() {
        let demo = |n: &str| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(n);
            UploadJpeg::for_tests(std::fs::read(p).unwrap(), 1, 1)
        };
        // (limit on the document's bytes, expected outcome)
        for (limit, done) in [(200_000usize, true), (1_000, false)] {
            let fake = Fake::default();
            fake.0.lock().unwrap().document_limit = Some(limit);
            let (q, up) = setup(&fake, &cfg());
            let events = q.subscribe().unwrap();
            let (front, back) = (demo("id-front.jpg"), demo("id-back.jpg"));
            let original = front.bytes().len() + back.bytes().len();
            let e = q
                .enqueue(NewEnrollment {
                    email: Email::parse("big@example.com").unwrap(),
                    phone: Phone::parse("+33612340000").unwrap(),
                    front,
                    back: Some(back),
                    side: None,
                    face: demo("face.jpg"),
                })
                .unwrap();
            let ev = wait_for(&events, |e| matches!(e, Event::Done { .. } | Event::NeedsUser { .. }));
            let s = fake.0.lock().unwrap();
            let docs: Vec<_> = s.calls.iter().filter(|c| c.0 == "document").collect();
            assert_eq!(docs.len(), 2, "one 413, one send of the smaller images");
            let resent = s.bytes[2].len() + s.bytes[3].len();
            assert!(resent <= original / 2 + 20_000, "re-encoded to about half: {resent} of {original}");
            assert!(image::load_from_memory(&s.bytes[2]).is_ok(), "still a valid JPEG");
            if done {
                assert!(matches!(ev, Event::Done { .. }), "{ev:?}");
            } else {
                assert!(matches!(ev, Event::NeedsUser { code: ErrorCode::PayloadTooLarge, .. }), "{ev:?}");
            }
            drop(s);
            assert_eq!(q.show(&e.reference).unwrap().steps[0].attempts, 2);
            up.shutdown();
            q.shutdown();
        }
    }

    /// Runs `f` on another thread and returns how long it took, failing if it takes longer than `limit`.
    fn within(limit: Duration, f: impl FnOnce() + Send + 'static) -> Duration {
        let start = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        if rx.recv_timeout(limit).is_err() {
            panic!("did not return within {limit:?}");
        }
        start.elapsed()
    }

    #[test]
    fn a_stop_during_a_slow_upload_releases_the_step_instead_of_parking_it() {
        let fake = Fake::default();
        fake.0.lock().unwrap().read_pause = Some(Duration::from_millis(20));
        let (q, up) = setup(&fake, &cfg());
        let events = q.subscribe().unwrap();
        let e = q.enqueue(enrollment(20)).unwrap();
        wait_for(&events, |e| matches!(e, Event::StepStarted { .. }));
        std::thread::sleep(Duration::from_millis(200));
        // The stop cuts the body off at its next chunk: that is not the customer's doing.
        within(Duration::from_secs(5), move || up.shutdown());
        let d = q.show(&e.reference).unwrap();
        assert_eq!(d.summary.state, State::Pending, "{d:?}");
        assert_eq!(d.steps[0].state, State::Pending);
        assert_eq!(d.steps[0].ambiguous, 0, "the body never went out whole");
        assert!(d.summary.last_error.is_none(), "no error recorded: {:?}", d.summary.last_error);
        let seen: Vec<Event> = events.try_iter().collect();
        assert!(!seen.iter().any(|e| matches!(e, Event::NeedsUser { .. } | Event::Failed { .. })), "{seen:?}");
        q.shutdown();
    }

    #[test]
    fn a_stop_while_waiting_for_the_answer_returns_promptly_and_counts_the_send_as_unanswered() {
        let fake = Fake::default();
        fake.0.lock().unwrap().hang_after_body = Some(Duration::from_secs(30));
        let (q, up) = setup(&fake, &cfg());
        let events = q.subscribe().unwrap();
        let e = q.enqueue(enrollment(21)).unwrap();
        wait_for(&events, |e| matches!(e, Event::StepStarted { .. }));
        std::thread::sleep(Duration::from_millis(300));
        // The uploader is blocked in the network: the stop must not wait for the answer.
        let took = within(Duration::from_secs(10), move || up.shutdown());
        assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
        let d = q.show(&e.reference).unwrap();
        assert_eq!(d.summary.state, State::Pending, "{d:?}");
        assert_eq!(d.steps[0].state, State::Pending);
        assert_eq!((d.steps[0].attempts, d.steps[0].ambiguous), (1, 1), "the attempt counts as unanswered");
        q.shutdown();
    }

    #[test]
    fn an_unreadable_stored_image_is_the_kiosks_fault_not_the_customers() {
        let fake = Fake::default();
        let store =
            Store::open_in_memory(QueueKey::from_bytes(&[5; 32]), &QueueConfig::default(), cfg().retry_cap).unwrap();
        let mut store = store;
        let e = store.enqueue(&enrollment(22)).unwrap();
        // Damage one stored chunk of the front image: decryption fails its authentication.
        store
            .conn()
            .execute(
                "UPDATE image SET data = zeroblob(length(data)) WHERE role = 'front' AND step_id IN
                 (SELECT id FROM step WHERE enrollment_id = ?1)",
                [e.id],
            )
            .unwrap();
        let q = QueueHandle::spawn(store, Duration::from_secs(60)).unwrap();
        let events = q.subscribe().unwrap();
        let up = Uploader::spawn(q.clone(), Box::new(fake.clone()), &cfg()).unwrap();
        let ev =
            wait_for(&events, |e| matches!(e, Event::Failed { .. } | Event::NeedsUser { .. } | Event::Done { .. }));
        up.shutdown();
        match ev {
            Event::Failed { code, .. } => {
                assert_eq!(code.as_str(), "stored_image_unreadable");
                assert_eq!(code.prompt().class, ErrorClass::Fatal, "an operator must act");
            }
            other => panic!("the customer is not asked to act for the kiosk's storage: {other:?}"),
        }
        assert_eq!(q.show(&e.reference).unwrap().summary.state, State::Failed);
        q.shutdown();
    }
}
