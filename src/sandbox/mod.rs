//! The local sandbox API: an HTTP/1.1 server on loopback that behaves like the Lapis eKYC API (contract sections
//! 2-4, paths from section 7), for tests, demos and operator training, and the product's embedded default when no
//! `api.base_url` is configured.
//!
//! Threads: one accept thread hands connections to a bounded pool of worker threads (`sandbox.max_connections`)
//! through a bounded queue of the same length; beyond that a connection is answered `503` at once and closed. Each
//! worker serves one request per connection under socket timeouts and builds its own face detector.
//! [`Sandbox::shutdown`] (or drop) stops accepting, closes the open connections and joins the threads within a
//! deadline.
//!
//! What it answers, and on what rules, is in [`rules_markdown`]; the exact wire strings are in [`wire`]. Tests and
//! trainers inject faults through [`Sandbox::faults`] or the control endpoint (see [`CONTROL_MARKDOWN`]).

use crate::api::{ApiFields, ApiPaths};
use crate::secret::ApiKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod demo;
mod faults;
mod http;
pub mod recognize;
mod server;
mod state;

pub use faults::{CallRecord, FaultAction, FaultError, FaultRule, Faults, SandboxEndpoint};
pub use server::{BASE64_LIMIT, wire};
pub use state::StateError;

/// How long [`Sandbox::shutdown`] waits for the threads.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// `[sandbox]`: the built-in sandbox API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Serve the liveness endpoint (E3).
    pub liveness_enabled: bool,
    /// Lowest similarity (0..1) at which a selfie matches the document portrait.
    pub face_match_threshold: f64,
    /// Time after which a new request reads `isValidated: true` (the email OTP and phone call, simulated).
    #[serde(with = "humantime_serde")]
    pub validation_delay: Duration,
    /// Worker threads, hence connections served at once; as many more wait in a queue, the rest get a 503.
    pub max_connections: usize,
    /// Uploads (E1-E3) buffered and decoded at once (each may hold up to 30 MB).
    pub max_concurrent_uploads: usize,
    /// Deadline for a request's line and headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Deadline for a request's body.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// A body arriving slower than this on average (bytes per second) is cut off with a 408 once
    /// `body_rate_grace` has passed; 0 turns the check off. The default, 1 KiB/s, is far below any link that can
    /// send a photo in time and far above a client trickling a byte at a time to hold a worker.
    pub min_body_rate: u64,
    /// Time before `min_body_rate` applies.
    #[serde(with = "humantime_serde")]
    pub body_rate_grace: Duration,
    /// Socket read and write timeout (each read, each write).
    #[serde(with = "humantime_serde")]
    pub io_timeout: Duration,
    /// Documents kept (the oldest are forgotten first).
    pub max_documents: usize,
    /// Requests kept (beyond it, E4 answers 507 until some are deleted).
    pub max_requests: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            liveness_enabled: false,
            // Measured (tests/sandbox_recognition.rs): the demo selfie and the original photo score 0.97-0.99
            // against the demo card; other people's faces from the group photo at most 0.36, the man in profile
            // 0.38. 0.6 sits in the middle of that gap.
            face_match_threshold: 0.6,
            validation_delay: Duration::from_secs(30),
            max_connections: 16,
            max_concurrent_uploads: 4,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(120),
            min_body_rate: 1024,
            body_rate_grace: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            max_documents: 500,
            max_requests: 1000,
        }
    }
}

impl SandboxConfig {
    /// Checks ranges; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.face_match_threshold) {
            return Err(format!("sandbox.face_match_threshold: {} is not between 0 and 1", self.face_match_threshold));
        }
        for (key, n, max) in [
            ("sandbox.max_connections", self.max_connections, 1024),
            ("sandbox.max_concurrent_uploads", self.max_concurrent_uploads, 64),
            ("sandbox.max_documents", self.max_documents, 100_000),
            ("sandbox.max_requests", self.max_requests, 100_000),
        ] {
            if n == 0 || n > max {
                return Err(format!("{key}: {n} is not between 1 and {max}"));
            }
        }
        for (key, d) in [
            ("sandbox.header_timeout", self.header_timeout),
            ("sandbox.body_timeout", self.body_timeout),
            ("sandbox.io_timeout", self.io_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{key}: must be longer than zero"));
            }
        }
        Ok(())
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Address to listen on; must be loopback (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The key clients must send in `x-api-key`.
    pub api_key: ApiKey,
    /// Where the requests are kept across restarts (documents' portraits never are); none: in memory only.
    pub state_file: Option<PathBuf>,
    /// Behaviour and bounds.
    pub config: SandboxConfig,
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listen address is not a loopback address.
    #[error("the sandbox listens on loopback addresses only (127.0.0.0/8, ::1), not {0}")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a sandbox thread: {0}")]
    Thread(std::io::Error),
    /// The state file could not be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// The configuration is not usable.
    #[error("{0}")]
    Config(String),
    /// The API key is empty.
    #[error("the sandbox api key is empty")]
    EmptyKey,
}

/// The open connections, so shutdown can close them.
#[derive(Debug, Default)]
struct Conns {
    next: AtomicU64,
    open: Mutex<HashMap<u64, TcpStream>>,
}

/// A running sandbox. Dropping it shuts it down. Its `Debug` shows the address only (the store holds contact
/// details and portrait crops).
pub struct Sandbox {
    shared: Arc<server::Shared>,
    conns: Arc<Conns>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
    /// One message per thread that has finished (in a mutex so the handle is `Sync`).
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl SandboxOptions {
    /// A sandbox on a free loopback port (127.0.0.1:0), in memory only, with the default behaviour: what tests,
    /// benchmarks and the embedded default start from.
    pub fn loopback(api_key: ApiKey) -> SandboxOptions {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key,
            state_file: None,
            config: SandboxConfig::default(),
        }
    }
}

impl Sandbox {
    /// Starts a sandbox on `opts.listen`, serving the contract's default paths and field names.
    pub fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        Sandbox::start_with(opts, ApiPaths::default(), ApiFields::default())
    }

    /// The product's embedded default: `127.0.0.1:0`, a random key, state in `<data_dir>/sandbox-state.json`, the
    /// paths and field names the API client is configured with. Logs where it listens.
    pub fn start_embedded(config: &crate::config::Config) -> Result<Sandbox, SandboxError> {
        let dir = &config.storage.data_dir;
        create_private_dir(dir).map_err(|source| StateError::Io { path: dir.clone(), source })?;
        let opts = SandboxOptions {
            state_file: Some(dir.join("sandbox-state.json")),
            config: config.sandbox.clone(),
            ..SandboxOptions::loopback(random_key())
        };
        let sb = Sandbox::start_with(opts, config.api.paths.clone(), config.api.fields.clone())?;
        log::info!(
            "no api.base_url configured: using the built-in sandbox at {}",
            sb.base_url().as_str().trim_end_matches('/')
        );
        Ok(sb)
    }

    /// Starts with explicit paths and field names.
    pub fn start_with(opts: SandboxOptions, paths: ApiPaths, fields: ApiFields) -> Result<Sandbox, SandboxError> {
        if !opts.listen.ip().is_loopback() {
            return Err(SandboxError::NotLoopback(opts.listen));
        }
        if opts.api_key.is_empty() {
            return Err(SandboxError::EmptyKey);
        }
        opts.config.validate().map_err(SandboxError::Config)?;
        let cfg = opts.config;
        let store = state::Store::open(opts.state_file.as_deref(), cfg.max_documents, cfg.max_requests)?;
        let listener =
            TcpListener::bind(opts.listen).map_err(|source| SandboxError::Bind { addr: opts.listen, source })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind { addr: opts.listen, source })?;
        let shared = Arc::new(server::Shared {
            api_key: opts.api_key,
            slots: server::Slots::new(cfg.max_concurrent_uploads),
            config: cfg,
            paths,
            fields,
            faults: Faults::default(),
            store: Mutex::new(store),
            stop: Default::default(),
        });
        let conns = Arc::new(Conns::default());
        let n = shared.config.max_connections;
        let (tx, rx) = mpsc::sync_channel::<(TcpStream, SocketAddr)>(n);
        let rx = Arc::new(Mutex::new(rx));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut sb = Sandbox { shared, conns, addr, threads: Vec::new(), done: Mutex::new(Some(done_rx)) };
        for i in 0..n {
            let (shared, conns, rx, done) = (sb.shared.clone(), sb.conns.clone(), rx.clone(), done_tx.clone());
            let h = std::thread::Builder::new()
                .name(format!("sandbox-worker-{i}"))
                .spawn(move || {
                    worker_loop(&shared, &conns, &rx);
                    let _ = done.send(());
                })
                .map_err(SandboxError::Thread)?;
            sb.threads.push(h);
        }
        let shared = sb.shared.clone();
        let h = std::thread::Builder::new()
            .name("sandbox-accept".into())
            .spawn(move || {
                accept_loop(&shared, listener, tx);
                let _ = done_tx.send(());
            })
            .map_err(SandboxError::Thread)?;
        sb.threads.push(h);
        log::info!("sandbox listening on http://{addr}");
        Ok(sb)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`.
    pub fn base_url(&self) -> url::Url {
        // An IP address and port always make a valid http URL.
        url::Url::parse(&format!("http://{}/", self.addr)).unwrap_or_else(|_| unreachable!("http://ip:port parses"))
    }

    /// The key clients must send.
    pub fn api_key(&self) -> &ApiKey {
        &self.shared.api_key
    }

    /// Fault injection (the same table the control endpoint edits).
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The call log (API endpoints and unknown paths; not the control endpoint), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.faults.calls()
    }

    /// Stops accepting, closes open connections and joins the threads within a deadline.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        for s in faults::lock(&self.conns.open).values() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        let total = self.threads.len();
        let mut finished = 0;
        if let Some(done) = faults::lock(&self.done).take() {
            while finished < total {
                let left = deadline.saturating_duration_since(Instant::now());
                match done.recv_timeout(left) {
                    Ok(()) => finished += 1,
                    Err(_) => break,
                }
            }
        }
        if finished < total {
            log::warn!(
                "sandbox: {} thread(s) did not stop within {SHUTDOWN_DEADLINE:?}; leaving them",
                total - finished
            );
            self.threads.clear();
            return;
        }
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        log::info!("sandbox on {} stopped", self.addr);
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &server::Shared, listener: TcpListener, tx: SyncSender<(TcpStream, SocketAddr)>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::debug!("sandbox: accept failed: {e}");
                // Out of descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else { continue };
        match tx.try_send((stream, peer)) {
            Ok(()) => {}
            Err(TrySendError::Full((mut s, _))) => {
                // Every worker is busy and the queue is full: refuse cleanly.
                let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                let resp = http::Response::json(503, wire::UNAVAILABLE).with_header("Retry-After", "1");
                let _ = std::io::Write::write_all(&mut s, &resp.to_bytes());
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
}

fn worker_loop(shared: &server::Shared, conns: &Conns, rx: &Mutex<mpsc::Receiver<(TcpStream, SocketAddr)>>) {
    let mut worker = server::Worker::new();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let next = faults::lock(rx).recv_timeout(Duration::from_millis(100));
        let (stream, peer) = match next {
            Ok(c) => c,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let id = conns.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(c) = stream.try_clone() {
            faults::lock(&conns.open).insert(id, c);
        }
        // A panic while serving one request must not take the worker down.
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server::serve(shared, &mut worker, stream, peer)));
        faults::lock(&conns.open).remove(&id);
        if r.is_err() {
            log::error!("sandbox: a request handler panicked; the connection was closed");
            worker = server::Worker::new();
        }
    }
}

/// A random API key for the sandbox (32 hex characters).
pub fn random_key() -> ApiKey {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        for x in b.iter_mut() {
            *x = fastrand::u8(..);
        }
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    ApiKey::new(&format!("sbx_{hex}"))
}

/// Creates the state file's directory, each new level durable in its parent (the state file is fsynced with its
/// directory on every save; the directory itself must not vanish in a power cut either).
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    crate::durable::create_dir_all(dir, 0o700).map(|_| ())
}

/// The recognition and matching rules, for the README and operators.
pub fn rules_markdown() -> &'static str {
    recognize::RULES_MARKDOWN
}

/// The control endpoint's routes, for the README and operators.
pub const CONTROL_MARKDOWN: &str = "\
### The sandbox control endpoint (loopback clients only, JSON in and out, no API key)

A control request must come from a loopback address, name a loopback host in `Host` (`127.0.0.1`, `[::1]` or
`localhost`) and carry the header `x-sandbox-control: 1`, so a web page open on the same machine cannot change the
sandbox: a browser sends neither a custom header cross-site nor a loopback `Host` from a rebinding domain. For
example `curl -H 'x-sandbox-control: 1' http://127.0.0.1:8080/_sandbox/calls`.

| Route | What it does |
|---|---|
| `GET /_sandbox/faults` | The active fault rules. |
| `POST /_sandbox/faults` | Adds a rule: `{\"endpoint\": \"face\", \"times\": 2, \"action\": \"respond\", \"status\": 500, \"body\": \"<html>\", \"content_type\": \"text/html\", \"headers\": [[\"Location\", \"http://127.0.0.1:9/\"]], \"cut_after\": 60}` (`cut_after`: close after that many bytes of the answer); or `\"action\": \"unavailable\"` (503, optional `\"retry_after\": 3`), `\"drop_after_body\"`, `\"latency\"` (`\"delay\": \"2s\"`), `\"trickle\"` (`\"bytes\": 1, \"interval\": \"50ms\"`). `endpoint` (`document`, `face`, `liveness`, `create_request`, `accept`, `list`, `show`, `delete`) and `times` are optional: every endpoint, until cleared. |
| `DELETE /_sandbox/faults` | Clears the rules. |
| `GET /_sandbox/calls` | The call log: endpoint, method, path, status (null: dropped), bytes received, whether the body was complete, time. |
| `DELETE /_sandbox/calls` | Clears the call log. |
| `POST /_sandbox/reset` | Clears rules and log; with `{\"state\": true}` also forgets every document and request. |
| `GET /_sandbox/rules` | The recognition rules (Markdown). |
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Sandbox>();
        send_sync::<Faults>();
    }

    #[test]
    fn config_ranges_are_checked_and_keys_named() {
        assert!(SandboxConfig::default().validate().is_ok());
        let bad = [
            SandboxConfig { face_match_threshold: 1.5, ..Default::default() },
            SandboxConfig { max_connections: 0, ..Default::default() },
            SandboxConfig { io_timeout: Duration::ZERO, ..Default::default() },
        ];
        for (cfg, key) in bad.iter().zip(["face_match_threshold", "max_connections", "io_timeout"]) {
            let e = cfg.validate().unwrap_err();
            assert!(e.contains(key), "{e}");
        }
        let random = random_key();
        assert!(random.expose().starts_with("sbx_") && random.expose().len() == 36);
        assert_ne!(random.expose(), random_key().expose());
    }
}
