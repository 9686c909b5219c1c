//! What the operator console needs from the API, as one small trait ([`OperatorApi`]): the requests held by the
//! API (list, accept, delete) and a connection test, each answered later through the [`Mailbox`] as a
//! [`ConsoleReport`]. [`LiveOperatorApi`] runs the calls on an "operator-api" thread that owns its own
//! [`ApiClient`]; [`DemoOperatorApi`] answers at once from memory (the screenshot gallery and the UI tests).
//!
//! Threads: the trait's methods are called on the UI thread and return at once; the calls run on the worker, whose
//! every wait is bounded by the client's own deadlines (`api.connect_timeout`, `api.request_timeout`, ...).

use super::services::{Mailbox, Report};
use crate::api::{ApiClient, ApiError, ErrorCode, KycRequest};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Calls waiting for the worker beyond this are refused (the console says the API is busy).
const CALLS_CAPACITY: usize = 4;
/// How long dropping [`LiveOperatorApi`] waits for a call in flight before leaving the thread to finish alone.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Where the console's API calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTarget {
    /// The API's base URL.
    pub url: String,
    /// True when it is the built-in sandbox (nothing reaches the real API).
    pub sandbox: bool,
    /// This kiosk holds an operator credential (the vendor's key), so the console lists, accepts and deletes
    /// requests. False behind the bank's gateway: requests are managed from the back office.
    pub manages_requests: bool,
}

/// A request held by the API, as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSummary {
    /// The request id (for accept and delete).
    pub id: String,
    /// The applicant's email.
    pub email: String,
    /// The applicant's phone number.
    pub phone: String,
    /// The email code and phone-call checks passed.
    pub validated: bool,
    /// An operator accepted it.
    pub accepted: bool,
    /// The face-match score, if the API gave one.
    pub face_score: Option<f64>,
}

impl From<&KycRequest> for RequestSummary {
    fn from(r: &KycRequest) -> RequestSummary {
        RequestSummary {
            id: r.id.clone(),
            email: r.email.clone(),
            phone: r.phone_number.clone(),
            validated: r.is_validated,
            accepted: r.is_accepted,
            face_score: r.face_match,
        }
    }
}

/// Why an operator's API call failed: the stable code, what the console explains (worded and translated by
/// `Texts.operator-explanation`), and the error's own technical words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The error's stable code.
    pub code: ErrorCode,
    /// The explanation the console shows: the code's own (its [`ErrorCode::as_str`]), or the console's fault
    /// (`console_busy`, `console_stopped`).
    pub explain: &'static str,
    /// The error's own words, untranslated (as the API or the network gave them; never a secret: API errors quote
    /// no key and no image). May be empty.
    pub detail: String,
}

impl ApiFailure {
    /// A failure explained by its code.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiFailure {
        ApiFailure { code, explain: code.as_str(), detail: detail.into() }
    }

    /// From an API error.
    pub fn from_error(e: &ApiError) -> ApiFailure {
        ApiFailure::new(e.code(), e.to_string())
    }

    /// The worker could not take the call: it is still busy with earlier ones.
    fn busy() -> ApiFailure {
        ApiFailure { code: ErrorCode::ServerError, explain: "console_busy", detail: String::new() }
    }

    /// The worker has stopped.
    fn stopped() -> ApiFailure {
        ApiFailure { code: ErrorCode::UnexpectedResponse, explain: "console_stopped", detail: String::new() }
    }
}

/// Which change an operator made to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestChange {
    /// Accepted (E5).
    Accept,
    /// Deleted (E9).
    Delete,
}

/// What kind of camera a [`CameraOption`] is (the console words each kind in the operator's language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraKind {
    /// A camera if one is found, else the demo pictures.
    Auto,
    /// A camera found on this machine.
    Device,
    /// The configured camera, when it is none of those found (a name, or "the first that opens").
    Configured,
    /// The configured replay of recorded frames.
    Replay,
    /// The bundled demo pictures.
    Demo,
}

impl CameraKind {
    /// The stable code the console words (`Texts.camera-label`).
    pub fn as_str(self) -> &'static str {
        match self {
            CameraKind::Auto => "auto",
            CameraKind::Device => "device",
            CameraKind::Configured => "configured",
            CameraKind::Replay => "replay",
            CameraKind::Demo => "demo",
        }
    }
}

/// A camera the operator can choose on the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraOption {
    /// Stable id: `auto`, `device:N`, `demo` or `replay:PATH`.
    pub id: String,
    /// What kind of camera it is.
    pub kind: CameraKind,
    /// Its name: the device's name and node, the replay's path, the configured selector; empty otherwise.
    pub name: String,
}

/// A console answer from a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleReport {
    /// The pending (`accepted: false`) or accepted requests.
    Requests {
        /// Which list.
        accepted: bool,
        /// The requests, or why not.
        result: Result<Vec<RequestSummary>, ApiFailure>,
    },
    /// A request was accepted or deleted (or not).
    RequestChanged {
        /// The request.
        id: String,
        /// What was asked.
        change: RequestChange,
        /// Done, or why not.
        result: Result<(), ApiFailure>,
    },
    /// The connection test's outcome: the time the API (or the bank's gateway) took to answer. The test reads no
    /// customer's data ([`ApiClient::check_connection`]).
    Connection(Result<Duration, ApiFailure>),
    /// The cameras to choose from, and the id of the one the customer screens use.
    Cameras {
        /// The choices.
        options: Vec<CameraOption>,
        /// The one in use.
        in_use: String,
        /// A choice made now is remembered across restarts (see [`super::CameraChoice`]).
        remembered: bool,
    },
    /// The quality checks on the camera previewed on the console.
    CameraCheck {
        /// Every check passed.
        accepted: bool,
        /// The main hint's stable code, if any.
        hint: Option<String>,
        /// Every measurement, named and formatted.
        metrics: Vec<(String, String)>,
    },
    /// The camera previewed on the console could not open; the camera's own error, for the operator.
    CameraFailed(String),
}

/// The console's API calls. Every method returns at once; the answer comes as a [`ConsoleReport`].
pub trait OperatorApi {
    /// Where the calls go.
    fn target(&self) -> ApiTarget;
    /// Lists the pending or the accepted requests: [`ConsoleReport::Requests`].
    fn list_requests(&mut self, accepted: bool);
    /// Accepts or deletes a request: [`ConsoleReport::RequestChanged`].
    fn change_request(&mut self, id: &str, change: RequestChange);
    /// Reaches the API with this kiosk's credential (its key, or its certificate at the gateway), reading no
    /// customer's data: [`ConsoleReport::Connection`].
    fn test_connection(&mut self);
}

enum Call {
    List(bool),
    Change(String, RequestChange),
    Test,
}

/// The console's API calls on an "operator-api" thread that owns its client. See the module header.
pub struct LiveOperatorApi {
    calls: Option<SyncSender<Call>>,
    thread: Option<JoinHandle<()>>,
    stopped: Option<Receiver<()>>,
    target: ApiTarget,
    mailbox: std::sync::Arc<Mailbox>,
}

impl std::fmt::Debug for LiveOperatorApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveOperatorApi").field("target", &self.target).finish_non_exhaustive()
    }
}

impl LiveOperatorApi {
    /// Starts the worker with `client` (`sandbox`: it points at the built-in sandbox); answers go to `mailbox`.
    pub fn spawn(
        client: ApiClient,
        sandbox: bool,
        mailbox: std::sync::Arc<Mailbox>,
    ) -> Result<LiveOperatorApi, std::io::Error> {
        let target = ApiTarget {
            url: client.base_url().as_str().trim_end_matches('/').to_string(),
            sandbox,
            manages_requests: client.manages_requests(),
        };
        let (tx, rx) = sync_channel::<Call>(CALLS_CAPACITY);
        let (done_tx, done_rx) = sync_channel::<()>(1);
        let mb = mailbox.clone();
        let thread = std::thread::Builder::new().name("operator-api".into()).spawn(move || {
            for call in rx {
                mb.post(Report::Console(answer(&client, call)));
            }
            let _ = done_tx.send(());
        })?;
        Ok(LiveOperatorApi { calls: Some(tx), thread: Some(thread), stopped: Some(done_rx), target, mailbox })
    }

    fn send(&self, call: Call, refused: impl FnOnce(ApiFailure) -> ConsoleReport) {
        let Some(tx) = &self.calls else { return };
        match tx.try_send(call) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.mailbox.post(Report::Console(refused(ApiFailure::busy()))),
            Err(TrySendError::Disconnected(_)) => {
                log::error!("the operator-api thread has stopped");
                self.mailbox.post(Report::Console(refused(ApiFailure::stopped())));
            }
        }
    }

    fn change(&self, id: &str, change: RequestChange) {
        let rid = id.to_string();
        self.send(Call::Change(id.to_string(), change), |f| ConsoleReport::RequestChanged {
            id: rid,
            change,
            result: Err(f),
        });
    }
}

/// Runs one call on the worker.
fn answer(client: &ApiClient, call: Call) -> ConsoleReport {
    match call {
        Call::List(accepted) => {
            let result = client
                .list_requests(accepted)
                .map(|list| list.iter().map(RequestSummary::from).collect())
                .map_err(|e| failed("list requests", &e));
            ConsoleReport::Requests { accepted, result }
        }
        Call::Change(id, change) => {
            let result = match change {
                RequestChange::Accept => client.accept_request(&id),
                RequestChange::Delete => client.delete_request(&id),
            };
            if result.is_ok() {
                log::info!(
                    "operator: request {id} {}",
                    if change == RequestChange::Accept { "accepted" } else { "deleted" }
                );
            }
            ConsoleReport::RequestChanged { id, change, result: result.map_err(|e| failed("change a request", &e)) }
        }
        Call::Test => {
            let result = client.check_connection().map_err(|e| failed("connection test", &e));
            if let Ok(t) = &result {
                log::info!("operator: connection test passed in {} ms", t.as_millis());
            }
            ConsoleReport::Connection(result)
        }
    }
}

fn failed(what: &str, e: &ApiError) -> ApiFailure {
    log::warn!("operator: {what} failed: {}", e.code());
    ApiFailure::from_error(e)
}

impl OperatorApi for LiveOperatorApi {
    fn target(&self) -> ApiTarget {
        self.target.clone()
    }

    fn list_requests(&mut self, accepted: bool) {
        self.send(Call::List(accepted), |f| ConsoleReport::Requests { accepted, result: Err(f) });
    }

    fn change_request(&mut self, id: &str, change: RequestChange) {
        self.change(id, change);
    }

    fn test_connection(&mut self) {
        self.send(Call::Test, |f| ConsoleReport::Connection(Err(f)));
    }
}

impl Drop for LiveOperatorApi {
    fn drop(&mut self) {
        // Closing the channel ends the worker after the call in flight, whose own deadlines bound it; the window
        // closing should not wait that long, so after STOP_WAIT the thread is left to finish alone.
        self.calls.take();
        let finished = self.stopped.take().is_some_and(|rx| rx.recv_timeout(STOP_WAIT).is_ok());
        if let Some(t) = self.thread.take() {
            if finished {
                if t.join().is_err() {
                    log::error!("the operator-api thread panicked");
                }
            } else {
                log::warn!("the operator-api thread is still waiting for the API; leaving it to finish");
            }
        }
    }
}

/// An in-memory API for the gallery and the UI tests: a few made-up requests, answered at once.
pub struct DemoOperatorApi {
    mailbox: std::sync::Arc<Mailbox>,
    requests: Vec<RequestSummary>,
    /// Answer every call with this failure instead (tests of the console's error display).
    pub fail_with: Option<ApiFailure>,
}

impl DemoOperatorApi {
    /// Three pending requests (one validated) and one accepted.
    pub fn new(mailbox: std::sync::Arc<Mailbox>) -> DemoOperatorApi {
        let r =
            |n: u32, email: &str, phone: &str, validated: bool, accepted: bool, score: Option<f64>| RequestSummary {
                id: format!("5f0c9a3e-0000-4000-8000-00000000000{n}"),
                email: email.into(),
                phone: phone.into(),
                validated,
                accepted,
                face_score: score,
            };
        DemoOperatorApi {
            mailbox,
            requests: vec![
                r(1, "ana.silva@example.com", "+447700900101", true, false, Some(0.97)),
                r(2, "tom.becker@example.com", "+447700900102", false, false, Some(0.91)),
                r(3, "li.wei@example.com", "+447700900103", false, false, None),
                r(4, "sam.okafor@example.com", "+447700900104", true, true, Some(0.95)),
            ],
            fail_with: None,
        }
    }

    fn post(&self, r: ConsoleReport) {
        self.mailbox.post(Report::Console(r));
    }

    fn change(&mut self, id: &str, change: RequestChange) {
        let result = match (&self.fail_with, self.requests.iter().position(|r| r.id == id)) {
            (Some(f), _) => Err(f.clone()),
            (None, None) => Err(ApiFailure::new(ErrorCode::RequestNotFound, format!("no request {id}"))),
            (None, Some(i)) => {
                match change {
                    RequestChange::Accept => self.requests[i].accepted = true,
                    RequestChange::Delete => {
                        self.requests.remove(i);
                    }
                }
                Ok(())
            }
        };
        self.post(ConsoleReport::RequestChanged { id: id.to_string(), change, result });
    }
}

impl OperatorApi for DemoOperatorApi {
    fn target(&self) -> ApiTarget {
        ApiTarget { url: "http://127.0.0.1:8080".into(), sandbox: true, manages_requests: true }
    }

    fn list_requests(&mut self, accepted: bool) {
        let result = match &self.fail_with {
            Some(f) => Err(f.clone()),
            None => Ok(self.requests.iter().filter(|r| r.accepted == accepted).cloned().collect()),
        };
        self.post(ConsoleReport::Requests { accepted, result });
    }

    fn change_request(&mut self, id: &str, change: RequestChange) {
        self.change(id, change);
    }

    fn test_connection(&mut self) {
        let result = match &self.fail_with {
            Some(f) => Err(f.clone()),
            None => Ok(Duration::from_millis(12)),
        };
        self.post(ConsoleReport::Connection(result));
    }
}
