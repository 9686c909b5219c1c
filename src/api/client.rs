//! [`ApiClient`]: the blocking `ureq` client for every Lapis endpoint. It owns one agent and is `Send + Sync`; each
//! call runs on the caller's thread (the uploader thread in the kiosk, the main thread in the CLI).
//!
//! Every call: the three standard headers (the key read through [`ApiKey::expose`] only there), a connect
//! deadline, a deadline for the answer's headers once the body is sent, and an overall deadline (longer for the
//! uploads). Redirects are never followed (a redirect could carry `x-api-key` elsewhere). The status is read first;
//! the body is read up to `api.max_response_bytes` and no further. Request bodies are streamed ([`JsonBody`]), so
//! a failure can be told apart as before or after the whole request was handed over (ambiguous).
//!
//! One log line per call: endpoint, status, duration, and the code on failure. Never a success body (OCR data),
//! never the key.

use super::body::{ImageBody, JsonBody, JsonBodyBuilder, MAX_BASE64_LEN};
use super::config::{ApiConfig, FaceMatchConfig, is_loopback};
use super::endpoint::{Endpoint, Method};
use super::error::{self, ApiError};
use super::tls::{FileStamp, TlsFiles, TlsMaterial};
use super::wire::{self, DocumentResult, DocumentUpload, FaceResult, KycRequest, LivenessResult, NewRequest};
use crate::contact::{Email, Phone};
use crate::secret::ApiKey;
use std::fmt;
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use ureq::typestate::WithBody;
use ureq::{RequestBuilder, SendBody};
use url::Url;

/// The data-URI prefix for images when `api.data_uri_prefix` is on.
const JPEG_DATA_URI: &str = "data:image/jpeg;base64,";
/// The data-URI prefix of the liveness clip (an MJPEG AVI); the vendor requires one for video.
const AVI_DATA_URI: &str = "data:video/x-msvideo;base64,";
/// The JSON key of the document id in E2, E3 and E4.
const DOCUMENT_ID_FIELD: &str = "documentIdentificationId";
/// Longest excerpt of an unexpected error answer in the error's message, and in the debug log.
const EXCERPT_IN_ERROR: usize = 100;
const EXCERPT_IN_LOG: usize = 200;
/// Longest request id accepted for E5, E7 and E9.
const MAX_ID_LEN: usize = 256;
/// The id the connection check asks E7 for when talking to the vendor directly: no request can have it, so the
/// answer carries no customer's data.
const PROBE_ID: &str = "ekyc-kiosk-connection-check-no-such-request";

/// The Lapis API client. Cheap to share: wrap it in an `Arc` to use it from several threads.
pub struct ApiClient {
    /// The agent, rebuilt when the TLS files change (a renewed kiosk certificate), with the files' stamps.
    agent: Mutex<(ureq::Agent, Vec<FileStamp>)>,
    base_url: Url,
    /// `base_url` without its trailing slash; paths (which start with `/`) are appended to it.
    base: String,
    /// The vendor key; `None` behind the bank's gateway, which adds it (the kiosk proves itself with its certificate).
    key: Option<ApiKey>,
    /// The kiosk's certificate and the gateway's CA, when configured.
    tls: TlsFiles,
    cfg: ApiConfig,
    min_score: Option<f64>,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient").field("base_url", &self.base_url.as_str()).finish_non_exhaustive()
    }
}

/// A successful (2xx) answer, read in full within the cap.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Why reading an answer's body stopped.
enum ReadFail {
    /// It is longer than `api.max_response_bytes`.
    TooLarge,
    /// The transport failed (timeout, reset, truncation).
    Transport(ureq::Error),
}

impl ApiClient {
    /// Builds the client with the vendor's API key; refuses http to a non-loopback host (configuration error).
    pub fn new(
        cfg: &ApiConfig,
        face_match: &FaceMatchConfig,
        base_url: Url,
        key: ApiKey,
    ) -> Result<ApiClient, ApiError> {
        ApiClient::with_credentials(cfg, face_match, base_url, Some(key), TlsFiles::default())
    }

    /// Builds the client with whatever credentials this kiosk has: the vendor's key (`x-api-key`), and/or TLS files
    /// (a client certificate for the bank's gateway, a private CA). At least one of the key and a client
    /// certificate is required.
    pub fn with_credentials(
        cfg: &ApiConfig,
        face_match: &FaceMatchConfig,
        base_url: Url,
        key: Option<ApiKey>,
        tls: TlsFiles,
    ) -> Result<ApiClient, ApiError> {
        let config_err = |reason: String| ApiError::Config { reason };
        // First, so that no message below can quote a password.
        if !base_url.username().is_empty() || base_url.password().is_some() {
            return Err(config_err("api.base_url: must not carry a user name or password".into()));
        }
        cfg.validate().map_err(config_err)?;
        face_match.validate().map_err(config_err)?;
        let loopback = is_loopback(&base_url);
        match base_url.scheme() {
            "https" => {}
            "http" if loopback && !tls.has_client_cert() => {}
            "http" if loopback => {
                return Err(config_err("api.base_url: a client certificate needs an https base url".into()));
            }
            "http" => {
                return Err(config_err(format!(
                    "api.base_url: `{}` uses http to a host that is not loopback; https is required",
                    base_url.origin().ascii_serialization()
                )));
            }
            other => return Err(config_err(format!("api.base_url: unsupported scheme `{other}`"))),
        }
        if base_url.host().is_none() {
            return Err(config_err("api.base_url: has no host".into()));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(config_err("api.base_url: must not carry a query or fragment".into()));
        }
        match &key {
            Some(key) if key.is_empty() => return Err(config_err("the api key is empty".into())),
            // The key goes in a header: visible ASCII only. Never quoted in the error.
            Some(key) if !key.expose().bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(config_err("the api key holds characters that cannot go in an http header".into()));
            }
            Some(_) => {}
            None if tls.has_client_cert() => {}
            None => {
                return Err(config_err(
                    "no credential: set the API key, or a client certificate for the bank's gateway".into(),
                ));
            }
        }
        let stamps = tls.stamps();
        let material = if tls.is_empty() { None } else { Some(tls.load().map_err(|e| config_err(e.to_string()))?) };
        let agent = build_agent(cfg, loopback, material.as_ref());
        let base = base_url.as_str().trim_end_matches('/').to_string();
        Ok(ApiClient {
            agent: Mutex::new((agent, stamps)),
            base_url,
            base,
            key,
            tls,
            cfg: cfg.clone(),
            min_score: face_match.min_score,
        })
    }

    /// Whether this client presents a client certificate (it talks to the bank's gateway).
    pub fn has_client_cert(&self) -> bool {
        self.tls.has_client_cert()
    }

    /// Whether this client holds an operator credential (the vendor's key): without one, listing, accepting and
    /// deleting requests is the back office's job, and the gateway refuses them.
    pub fn manages_requests(&self) -> bool {
        self.key.is_some()
    }

    /// Checks that the API answers and accepts this kiosk, reading no customer's data: behind a gateway (a client
    /// certificate), its health route, which the gateway answers itself once it has accepted the certificate;
    /// talking to the vendor directly, E7 for an id no request can have (an answer of "not found" shows the key was
    /// accepted). Returns how long the answer took.
    pub fn check_connection(&self) -> Result<Duration, ApiError> {
        let started = Instant::now();
        if self.has_client_cert() {
            let endpoint = Endpoint::Health;
            return self.perform(endpoint, &self.cfg.paths.health, None, |_| Ok(started.elapsed()));
        }
        match self.get_request(PROBE_ID) {
            // The answer is dropped unread: a stray request in it is nobody's business here.
            Ok(_) | Err(ApiError::RequestNotFound { .. }) => Ok(started.elapsed()),
            Err(e) => Err(e),
        }
    }

    /// The agent to use now: rebuilt first when a TLS file was replaced (a renewed certificate goes into use
    /// without a restart). A replacement that cannot be loaded is logged and the agent in use is kept.
    fn agent(&self) -> ureq::Agent {
        let mut held = match self.agent.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !self.tls.is_empty() {
            let now = self.tls.stamps();
            if now != held.1 {
                match self.tls.load() {
                    Ok(material) => {
                        log::info!("api: the TLS files changed; the new certificate is used from now on");
                        held.0 = build_agent(&self.cfg, is_loopback(&self.base_url), Some(&material));
                    }
                    Err(e) => log::warn!("api: the TLS files changed but cannot be used ({e}); keeping the old ones"),
                }
                held.1 = now;
            }
        }
        held.0.clone()
    }

    /// The key's text for scrubbing excerpts (empty without a key).
    fn key_text(&self) -> &str {
        self.key.as_ref().map_or("", ApiKey::expose)
    }

    /// The base URL calls go to.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// E1. Refuses locally (ApiError::PayloadTooLarge, no request sent) when the summed base64 of the sides would
    /// exceed 30,000,000 bytes.
    pub fn upload_document(&self, doc: DocumentUpload<'_>) -> Result<DocumentResult, ApiError> {
        let endpoint = Endpoint::Document;
        let started = Instant::now();
        let fields = &self.cfg.fields;
        let prefix = self.cfg.data_uri_prefix.then_some(JPEG_DATA_URI);
        let mut builder = JsonBodyBuilder::new().image(&fields.front, prefix, doc.front);
        if let Some(back) = doc.back {
            builder = builder.image(&fields.back, prefix, back);
        }
        if let Some(side) = doc.side {
            builder = builder.image(&fields.side, prefix, side);
        }
        if let Err(e) = check_size(endpoint, builder.base64_total()) {
            return log_outcome(endpoint, started, None, Err(e));
        }
        let body = builder.build();
        self.perform(endpoint, &self.cfg.paths.document, Some(body), |a| {
            wire::parse_document(&a.body).map_err(|d| malformed(endpoint, a.status, d))
        })
    }

    /// E2. Applies face_match.min_score when set (a lower score is ApiError::FaceMismatch).
    pub fn match_face(&self, document_id: &str, face: ImageBody<'_>) -> Result<FaceResult, ApiError> {
        let endpoint = Endpoint::Face;
        let started = Instant::now();
        let prefix = self.cfg.data_uri_prefix.then_some(JPEG_DATA_URI);
        let builder = match JsonBodyBuilder::new().field(DOCUMENT_ID_FIELD, &document_id) {
            Ok(b) => b.image(&self.cfg.fields.face, prefix, face),
            Err(reason) => return log_outcome(endpoint, started, None, Err(ApiError::Config { reason })),
        };
        if let Err(e) = check_size(endpoint, builder.base64_total()) {
            return log_outcome(endpoint, started, None, Err(e));
        }
        let min = self.min_score;
        self.perform(endpoint, &self.cfg.paths.face, Some(builder.build()), |a| {
            let score = wire::parse_face(&a.body).map_err(|d| malformed(endpoint, a.status, d))?;
            match min {
                Some(min) if score < min => Err(ApiError::FaceMismatch { score: Some(score) }),
                _ => Ok(FaceResult { score }),
            }
        })
    }

    /// E3, only when api.liveness_enabled.
    pub fn check_liveness(&self, document_id: &str, clip: ImageBody<'_>) -> Result<LivenessResult, ApiError> {
        let endpoint = Endpoint::Liveness;
        let started = Instant::now();
        if !self.cfg.liveness_enabled {
            let reason = "api.liveness_enabled is false: the liveness step is off".to_string();
            return log_outcome(endpoint, started, None, Err(ApiError::Config { reason }));
        }
        let builder = match JsonBodyBuilder::new().field(DOCUMENT_ID_FIELD, &document_id) {
            Ok(b) => b.image(&self.cfg.fields.liveness, Some(AVI_DATA_URI), clip),
            Err(reason) => return log_outcome(endpoint, started, None, Err(ApiError::Config { reason })),
        };
        if let Err(e) = check_size(endpoint, builder.base64_total()) {
            return log_outcome(endpoint, started, None, Err(e));
        }
        self.perform(endpoint, &self.cfg.paths.liveness, Some(builder.build()), |a| {
            if wire::parse_liveness(&a.body) {
                Ok(LivenessResult { passed: true })
            } else {
                Err(ApiError::LivenessFailed)
            }
        })
    }

    /// E4 (201 expected).
    pub fn create_request(&self, req: &NewRequest) -> Result<(), ApiError> {
        let value = serde_json::json!({
            "email": req.email.as_str(),
            "phoneNumber": req.phone.wire(self.cfg.phone_format),
            DOCUMENT_ID_FIELD: req.document_id,
        });
        self.perform_value(Endpoint::CreateRequest, &self.cfg.paths.create_request, &value)
    }

    /// E5.
    pub fn accept_request(&self, id: &str) -> Result<(), ApiError> {
        let endpoint = Endpoint::Accept;
        if let Err(e) = check_id(endpoint, id) {
            return log_outcome(endpoint, Instant::now(), None, Err(e));
        }
        self.perform_value(endpoint, &self.cfg.paths.accept, &serde_json::json!({ "id": id }))
    }

    /// E6.
    pub fn list_requests(&self, accepted: bool) -> Result<Vec<KycRequest>, ApiError> {
        let endpoint = Endpoint::List;
        let path = format!("{}?accepted={accepted}", self.cfg.paths.list);
        self.perform(endpoint, &path, None, |a| {
            wire::parse_requests(&a.body).map_err(|d| malformed(endpoint, a.status, d))
        })
    }

    /// E7; an unknown id is ApiError::RequestNotFound.
    pub fn get_request(&self, id: &str) -> Result<KycRequest, ApiError> {
        let endpoint = Endpoint::Show;
        if let Err(e) = check_id(endpoint, id) {
            return log_outcome(endpoint, Instant::now(), None, Err(e));
        }
        let path = self.cfg.paths.show.replace("{id}", &encode_path_segment(id));
        self.perform(endpoint, &path, None, |a| {
            let mut items = wire::parse_requests(&a.body).map_err(|d| malformed(endpoint, a.status, d))?;
            if let Some(i) = items.iter().position(|r| r.id == id) {
                return Ok(items.swap_remove(i));
            }
            match items.len() {
                0 => Err(ApiError::RequestNotFound { endpoint, status: Some(a.status) }),
                1 => Ok(items.swap_remove(0)),
                n => Err(malformed(endpoint, a.status, format!("{n} requests and none with the id asked for"))),
            }
        })
    }

    /// E9.
    pub fn delete_request(&self, id: &str) -> Result<(), ApiError> {
        let endpoint = Endpoint::Delete;
        if let Err(e) = check_id(endpoint, id) {
            return log_outcome(endpoint, Instant::now(), None, Err(e));
        }
        self.perform_value(endpoint, &self.cfg.paths.delete, &serde_json::json!({ "id": id }))
    }

    /// Reconciles an E4 whose outcome is unknown (an ambiguous attempt, then a 409 on the retry): looks through the
    /// pending list, then the accepted one (two E6 calls at most), for a request with both this email and this
    /// phone number. `Some` means the earlier attempt went through and the step is done.
    pub fn find_request(&self, email: &Email, phone: &Phone) -> Result<Option<KycRequest>, ApiError> {
        for accepted in [false, true] {
            if let Some(found) = self.list_requests(accepted)?.into_iter().find(|r| r.has_contact(email, phone)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// A call whose body is one small JSON value and whose success carries nothing we need.
    fn perform_value(&self, endpoint: Endpoint, path: &str, value: &serde_json::Value) -> Result<(), ApiError> {
        let body = match JsonBody::from_value(value) {
            Ok(b) => b,
            Err(reason) => return log_outcome(endpoint, Instant::now(), None, Err(ApiError::Config { reason })),
        };
        self.perform(endpoint, path, Some(body), |_| Ok(()))
    }

    /// Runs one exchange, parses a success with `parse`, and logs the outcome.
    fn perform<T>(
        &self,
        endpoint: Endpoint,
        path: &str,
        body: Option<JsonBody<'_>>,
        parse: impl FnOnce(Answer) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, path);
        match self.exchange(endpoint, &url, body) {
            Ok(answer) => {
                let status = answer.status;
                log_outcome(endpoint, started, Some(status), parse(answer))
            }
            Err(e) => {
                let status = e.http_status();
                log_outcome(endpoint, started, status, Err(e))
            }
        }
    }

    /// Sends the request and reads the answer: a 2xx with its body, or the typed error.
    fn exchange(&self, endpoint: Endpoint, url: &str, mut body: Option<JsonBody<'_>>) -> Result<Answer, ApiError> {
        let overall = if endpoint.is_upload() { self.cfg.upload_timeout } else { self.cfg.request_timeout };
        let agent = self.agent();
        let sent = match (endpoint.method(), body.as_mut()) {
            (Method::Get, _) => self.headers(agent.get(url), overall).call(),
            (Method::Post, Some(b)) => self.send(agent.post(url), overall, b),
            (Method::Put, Some(b)) => self.send(agent.put(url), overall, b),
            (Method::Delete, Some(b)) => self.send(agent.delete(url).force_send_body(), overall, b),
            // Every endpoint with an effect builds its body; reaching this is a defect in this module.
            (_, None) => {
                return Err(ApiError::Config { reason: format!("{endpoint} was called without a request body") });
            }
        };
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return Err(transport_error(endpoint, e, body.as_ref(), false)),
        };
        let status = response.status().as_u16();

        if (300..=399).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .map(|v| error::excerpt(v.as_bytes(), self.key_text(), EXCERPT_IN_ERROR))
                .unwrap_or_default();
            let detail = format!(
                "a redirect to \"{location}\", which is never followed (a redirect could carry the api key \
                 elsewhere): check api.base_url and api.paths"
            );
            return Err(ApiError::UnexpectedResponse { endpoint, status: Some(status), detail });
        }
        if error::is_server_trouble(status) {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| error::parse_retry_after(v, SystemTime::now()));
            return Err(error::from_answer(endpoint, status, None, retry_after, None));
        }

        let hint = response.body().content_length();
        let mut reader = response.body_mut().with_config().reader();
        let read = read_capped(&mut reader, self.cfg.max_response_bytes, hint);
        let success = (200..=299).contains(&status);
        match read {
            Ok(bytes) if success => Ok(Answer { status, body: bytes }),
            Ok(bytes) => {
                let message = wire::error_message(&bytes);
                if let Some(refusal) = error::gateway_refusal(endpoint, status, &bytes, message.as_deref()) {
                    return Err(refusal);
                }
                if error::is_documented(endpoint, status, message.as_deref()) {
                    return Err(error::from_answer(endpoint, status, message.as_deref(), None, None));
                }
                // An undocumented error answer: keep a short, scrubbed excerpt of it for the operator.
                let shown = message.as_deref().map(str::as_bytes).unwrap_or(&bytes);
                let short = error::excerpt(shown, self.key_text(), EXCERPT_IN_ERROR);
                log::debug!(
                    "api {endpoint}: undocumented answer {status}: {}",
                    error::excerpt(&bytes, self.key_text(), EXCERPT_IN_LOG)
                );
                Err(error::from_answer(endpoint, status, message.as_deref(), None, Some(&short)))
            }
            Err(fail) => {
                // Without the body, an answer whose status alone is documented is still that error.
                if !success && error::is_documented(endpoint, status, None) {
                    return Err(error::from_answer(endpoint, status, None, None, None));
                }
                match fail {
                    ReadFail::TooLarge => Err(ApiError::UnexpectedResponse {
                        endpoint,
                        status: Some(status),
                        detail: format!(
                            "the answer is longer than api.max_response_bytes ({} bytes)",
                            self.cfg.max_response_bytes
                        ),
                    }),
                    ReadFail::Transport(e) => Err(transport_error(endpoint, e, body.as_ref(), true)),
                }
            }
        }
    }

    /// The headers every call carries, and the call's overall deadline.
    fn headers<B>(&self, rb: RequestBuilder<B>, overall: Duration) -> RequestBuilder<B> {
        let rb = rb
            .config()
            .timeout_global(Some(overall))
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        match &self.key {
            Some(key) => rb.header("x-api-key", key.expose()),
            // Behind the gateway: it adds the key; the kiosk has none.
            None => rb,
        }
    }

    fn send(
        &self,
        rb: RequestBuilder<WithBody>,
        overall: Duration,
        body: &mut JsonBody<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let len = body.len();
        self.headers(rb, overall).header("Content-Length", len.to_string()).send(SendBody::from_reader(body))
    }
}

/// The agent: deadlines, no redirects, no proxy on loopback, and the TLS material when configured.
fn build_agent(cfg: &ApiConfig, loopback: bool, tls: Option<&TlsMaterial>) -> ureq::Agent {
    let mut builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Never follow a redirect: the answer itself comes back, and is refused below.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .https_only(!loopback)
        .timeout_resolve(Some(cfg.connect_timeout))
        .timeout_connect(Some(cfg.connect_timeout))
        .timeout_recv_response(Some(cfg.response_timeout))
        .user_agent(concat!("ekyc-kiosk/", env!("CARGO_PKG_VERSION")))
        .accept("application/json")
        // No compression is built in; ask for none.
        .accept_encoding("")
        // Drop idle connections before a typical server's keep-alive timeout (Node's is 5 s), so a reused
        // connection is not closed under a request that then looks ambiguous.
        .max_idle_age(Duration::from_secs(4));
    if loopback {
        // The sandbox and tests: never through a proxy from the environment.
        builder = builder.proxy(None);
    }
    if let Some(m) = tls {
        let mut t = ureq::tls::TlsConfig::builder().client_cert(m.client.clone());
        if let Some(roots) = &m.roots {
            t = t.root_certs(ureq::tls::RootCerts::Specific(roots.clone()));
        }
        builder = builder.tls_config(t.build());
    }
    builder.build().into()
}

/// Whether a TLS error is the server refusing our certificate (a fatal alert about it), rather than us refusing
/// the server's.
fn refuses_our_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    use rustls::AlertDescription as A;
    let rustls_err = e
        .downcast_ref::<rustls::Error>()
        .or_else(|| e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref()));
    matches!(
        rustls_err,
        Some(rustls::Error::AlertReceived(
            A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired
        ))
    )
}

/// Maps a transport failure. `answered`: the status line had arrived (the failure came while reading the body).
fn transport_error(endpoint: Endpoint, e: ureq::Error, body: Option<&JsonBody<'_>>, answered: bool) -> ApiError {
    if let Some(reason) = body.and_then(JsonBody::source_failure) {
        return ApiError::ImageUnreadable { endpoint, reason: reason.to_string() };
    }
    // Whether the whole request was handed over: only then may the server have acted on it.
    let complete = answered || body.is_some_and(JsonBody::is_complete);
    let after_send = endpoint.has_effect() && complete;
    let unreachable = |reason: &str| ApiError::NetworkUnreachable { endpoint, reason: reason.into(), body_sent: false };
    let broken = |reason: String| ApiError::NetworkUnreachable { endpoint, reason, body_sent: after_send };
    let config = |reason: &str| ApiError::Config { reason: reason.into() };
    match e {
        ureq::Error::Timeout(t) => {
            use ureq::Timeout as T;
            let (stage, sent) = match t {
                T::Resolve => ("looking up the host", false),
                T::Connect => ("while connecting", false),
                T::SendRequest => ("while sending the request", false),
                T::SendBody => ("while sending the request body", false),
                T::RecvResponse => ("waiting for the answer", after_send),
                T::RecvBody => ("while reading the answer", after_send),
                _ if answered => ("while reading the answer (overall deadline)", after_send),
                _ => ("(overall deadline)", after_send),
            };
            ApiError::Timeout { endpoint, stage, body_sent: sent }
        }
        // rustls reports a refused handshake (unknown CA, expired certificate, another host's name) as invalid data
        // on the socket, before any answer.
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::InvalidData && !answered => {
            let reason = io.get_ref().map(|e| e.to_string()).unwrap_or_else(|| io.to_string());
            let reason = error::excerpt(reason.as_bytes(), "", 200);
            match io.get_ref() {
                Some(inner) if refuses_our_certificate(inner) => {
                    ApiError::CertificateRefused { endpoint, status: None, reason }
                }
                _ => ApiError::Tls { endpoint, reason },
            }
        }
        ureq::Error::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused => unreachable("connection refused"),
            io::ErrorKind::HostUnreachable => unreachable("host unreachable"),
            io::ErrorKind::NetworkUnreachable => unreachable("network unreachable"),
            io::ErrorKind::NetworkDown => unreachable("network down"),
            io::ErrorKind::AddrNotAvailable => unreachable("address not available"),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                ApiError::Timeout { endpoint, stage: "on the network", body_sent: after_send }
            }
            io::ErrorKind::UnexpectedEof if answered => broken("the answer was cut short".into()),
            io::ErrorKind::UnexpectedEof => broken("the connection closed without an answer".into()),
            kind => broken(format!("{}", kind).to_lowercase()),
        },
        ureq::Error::HostNotFound => unreachable("host not found"),
        ureq::Error::ConnectionFailed => unreachable("connection failed"),
        ureq::Error::ConnectProxyFailed(_) => unreachable("the proxy refused the connection"),
        ureq::Error::Rustls(e) => {
            let reason = error::excerpt(e.to_string().as_bytes(), "", 200);
            if refuses_our_certificate(&e) {
                ApiError::CertificateRefused { endpoint, status: None, reason }
            } else {
                ApiError::Tls { endpoint, reason }
            }
        }
        ureq::Error::Tls(m) => ApiError::Tls { endpoint, reason: m.to_string() },
        ureq::Error::Pem(_) => ApiError::Tls { endpoint, reason: "unreadable certificate data".into() },
        ureq::Error::TlsRequired => ApiError::Tls { endpoint, reason: "the server requires tls".into() },
        ureq::Error::Protocol(_) => broken("the answer is not valid http".into()),
        ureq::Error::LargeResponseHeader(..) => ApiError::UnexpectedResponse {
            endpoint,
            status: None,
            detail: "the answer's headers are larger than 64 KiB".into(),
        },
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => ApiError::UnexpectedResponse {
            endpoint,
            status: None,
            detail: "a redirect, which is never followed".into(),
        },
        ureq::Error::BadUri(_) => config("api.base_url and api.paths do not form a valid url"),
        ureq::Error::Http(_) => config("a request header is not valid"),
        ureq::Error::RequireHttpsOnly(_) => config("api.base_url: https is required"),
        ureq::Error::InvalidProxyUrl => config("the proxy url in the environment is not valid"),
        _ => broken("transport failure".into()),
    }
}

/// Refuses an upload over the base64 limit before anything is sent.
fn check_size(endpoint: Endpoint, base64_len: u64) -> Result<(), ApiError> {
    if base64_len > MAX_BASE64_LEN {
        return Err(ApiError::PayloadTooLarge { endpoint, base64_len: Some(base64_len) });
    }
    Ok(())
}

/// An empty id would address another endpoint (E7's path) or nothing: refused locally.
fn check_id(endpoint: Endpoint, id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::RequestNotFound { endpoint, status: None });
    }
    Ok(())
}

/// A 2xx whose body is not what the contract says. `detail` is in our words (never quoting the body).
fn malformed(endpoint: Endpoint, status: u16, detail: String) -> ApiError {
    ApiError::UnexpectedResponse { endpoint, status: Some(status), detail }
}

/// Writes the call's one log line and passes the outcome through.
fn log_outcome<T>(
    endpoint: Endpoint,
    started: Instant,
    status: Option<u16>,
    outcome: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let ms = started.elapsed().as_millis();
    let status = status.map_or_else(|| "-".to_string(), |s| s.to_string());
    match &outcome {
        Ok(_) => log::info!("api {endpoint} status={status} {ms}ms ok"),
        Err(e) => log::info!(
            "api {endpoint} status={status} {ms}ms failed code={} class={}: {e}",
            e.code(),
            e.class().as_str()
        ),
    }
    outcome
}

/// Reads at most `cap` bytes; a longer body (announced by `Content-Length` or found while reading) is refused
/// without reading more than `cap + 1` bytes.
fn read_capped(reader: &mut impl Read, cap: u64, content_length: Option<u64>) -> Result<Vec<u8>, ReadFail> {
    if content_length.is_some_and(|n| n > cap) {
        return Err(ReadFail::TooLarge);
    }
    // Bounded by the cap, which the configuration keeps sane.
    let initial = content_length.unwrap_or(8 * 1024).min(cap) as usize;
    let mut buf = Vec::with_capacity(initial);
    match reader.take(cap.saturating_add(1)).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > cap => Err(ReadFail::TooLarge),
        Ok(_) => Ok(buf),
        Err(e) => Err(ReadFail::Transport(ureq::Error::from(e))),
    }
}

/// Percent-encodes an id for one path segment: unreserved characters stay, every other byte becomes `%XX`.
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Result<ApiClient, ApiError> {
        ApiClient::new(
            &ApiConfig::default(),
            &FaceMatchConfig::default(),
            Url::parse(base).unwrap(),
            ApiKey::new("k3y"),
        )
    }

    #[test]
    fn https_is_required_except_on_loopback() {
        let table = [
            ("https://kyc-be.rubilink.app", true),
            ("https://kyc-be.rubilink.app/prefix/", true),
            ("http://127.0.0.1:8080", true),
            ("http://localhost:1", true),
            ("http://[::1]:8080", true),
            ("http://kyc-be.rubilink.app", false),
            ("http://10.0.0.1", false),
            ("ftp://127.0.0.1", false),
            ("https://user:pw@kyc-be.rubilink.app", false),
            ("http://user:pw@kyc-be.rubilink.app", false),
            ("https://kyc-be.rubilink.app/?a=b", false),
        ];
        for (url, ok) in table {
            let got = client(url);
            assert_eq!(got.is_ok(), ok, "{url}: {:?}", got.err());
            if let Err(e) = got {
                assert_eq!(e.code(), crate::api::ErrorCode::UnexpectedResponse);
                assert_eq!(e.class(), crate::api::ErrorClass::Fatal);
                assert!(!e.to_string().contains("pw"), "{e}");
            }
        }
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        for key in ["", "with space", "tab\there"] {
            let err = ApiClient::new(
                &ApiConfig::default(),
                &FaceMatchConfig::default(),
                Url::parse("http://127.0.0.1:1").unwrap(),
                ApiKey::new(key),
            )
            .unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(key.is_empty() || !shown.contains(key), "{shown}");
        }
    }

    #[test]
    fn client_is_send_and_sync_and_its_debug_hides_the_key() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ApiClient>();
        let c = client("http://127.0.0.1:9").unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("k3y"), "{dbg}");
    }

    #[test]
    fn ids_are_percent_encoded_into_one_segment() {
        assert_eq!(encode_path_segment("abc-123_x.y~z"), "abc-123_x.y~z");
        assert_eq!(encode_path_segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
        assert_eq!(encode_path_segment("é"), "%C3%A9");
    }

    #[test]
    fn transport_failures_are_classified_by_kind_and_by_how_far_the_body_got() {
        use crate::api::{ErrorClass, ErrorClass::*, ErrorCode as C};
        use ureq::Timeout as T;
        let io_err = |k: io::ErrorKind| ureq::Error::Io(io::Error::from(k));
        // (endpoint, error, body handed over completely, answer started, code, class)
        #[rustfmt::skip]
        let table: Vec<(Endpoint, ureq::Error, bool, bool, C, ErrorClass)> = vec![
            (Endpoint::Document, ureq::Error::HostNotFound, false, false, C::NetworkUnreachable, Transient),
            (Endpoint::Document, ureq::Error::ConnectionFailed, false, false, C::NetworkUnreachable, Transient),
            (Endpoint::Document, io_err(io::ErrorKind::ConnectionRefused), false, false, C::NetworkUnreachable, Transient),
            (Endpoint::Face, ureq::Error::Tls("bad certificate"), false, false, C::TlsFailure, Transient),
            (Endpoint::Face, ureq::Error::Timeout(T::Connect), false, false, C::Timeout, Transient),
            (Endpoint::Face, ureq::Error::Timeout(T::Resolve), false, false, C::Timeout, Transient),
            (Endpoint::Face, ureq::Error::Timeout(T::SendBody), true, false, C::Timeout, Transient),
            (Endpoint::Face, ureq::Error::Timeout(T::Global), false, false, C::Timeout, Transient),
            (Endpoint::Face, ureq::Error::Timeout(T::Global), true, false, C::Timeout, Ambiguous),
            (Endpoint::Face, ureq::Error::Timeout(T::RecvResponse), true, false, C::Timeout, Ambiguous),
            (Endpoint::Face, ureq::Error::Timeout(T::RecvBody), true, true, C::Timeout, Ambiguous),
            (Endpoint::List, ureq::Error::Timeout(T::RecvResponse), true, false, C::Timeout, Transient),
            (Endpoint::CreateRequest, io_err(io::ErrorKind::ConnectionReset), false, false, C::NetworkUnreachable, Transient),
            (Endpoint::CreateRequest, io_err(io::ErrorKind::ConnectionReset), true, false, C::NetworkUnreachable, Ambiguous),
            (Endpoint::CreateRequest, io_err(io::ErrorKind::UnexpectedEof), true, false, C::NetworkUnreachable, Ambiguous),
            (Endpoint::CreateRequest, io_err(io::ErrorKind::BrokenPipe), false, false, C::NetworkUnreachable, Transient),
            (Endpoint::Show, io_err(io::ErrorKind::UnexpectedEof), true, true, C::NetworkUnreachable, Transient),
            (Endpoint::Delete, io_err(io::ErrorKind::TimedOut), true, false, C::Timeout, Ambiguous),
            (Endpoint::Accept, ureq::Error::LargeResponseHeader(70_000, 65_536), true, false, C::UnexpectedResponse, Fatal),
            (Endpoint::Accept, ureq::Error::BadUri("x".into()), false, false, C::UnexpectedResponse, Fatal),
        ];
        for (endpoint, e, complete, answered, code, class) in table {
            let shown = format!("{e}");
            let mut body = JsonBody::from_value(&serde_json::json!({"id": "r1"})).unwrap();
            if complete {
                let mut sink = Vec::new();
                body.read_to_end(&mut sink).unwrap();
            }
            let err = transport_error(endpoint, e, Some(&body), answered);
            assert_eq!((err.code(), err.class()), (code, class), "{endpoint} {shown}: {err}");
        }
    }

    #[test]
    fn read_capped_stops_at_the_cap() {
        // An endless source: the read must stop after cap + 1 bytes.
        let mut endless = io::repeat(b'x');
        let mut counted = (&mut endless).take(u64::MAX);
        assert!(matches!(read_capped(&mut counted, 1000, None), Err(ReadFail::TooLarge)));
        assert_eq!(u64::MAX - counted.limit(), 1001);
        // Announced too large: nothing is read.
        let mut src = &b"abc"[..];
        assert!(matches!(read_capped(&mut src, 2, Some(3)), Err(ReadFail::TooLarge)));
        assert_eq!(src.len(), 3);
        let mut exact = &b"abc"[..];
        assert_eq!(read_capped(&mut exact, 3, None).ok().unwrap(), b"abc");
    }

    #[test]
    fn local_refusals_make_no_request() {
        // Port 9 on loopback: nothing listens, so any request would fail as network_unreachable.
        let c = client("http://127.0.0.1:9").unwrap();
        let err = c.get_request("").unwrap_err();
        assert!(matches!(err, ApiError::RequestNotFound { status: None, .. }), "{err:?}");
        let err = c.check_liveness("doc", ImageBody::from_bytes(b"x")).unwrap_err();
        assert!(matches!(err, ApiError::Config { .. }), "{err:?}");
        let big = ImageBody::from_reader(Box::new(io::empty()), 22_500_001);
        let err = c.match_face("doc", big).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge { base64_len: Some(30_000_004), .. }), "{err:?}");
        // Summed over the sides: two halves that fit alone do not fit together.
        let doc = DocumentUpload {
            front: ImageBody::from_reader(Box::new(io::empty()), 12_000_000),
            back: Some(ImageBody::from_reader(Box::new(io::empty()), 12_000_000)),
            side: None,
        };
        let err = c.upload_document(doc).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge { base64_len: Some(32_000_000), .. }), "{err:?}");
    }
}
