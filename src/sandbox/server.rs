//! The sandbox's connection handling and endpoints: one worker thread per connection from a bounded pool, the
//! contract's endpoints (E1-E7, E9) with their documented errors byte for byte, and the `/_sandbox/` control
//! endpoint. Each worker owns its own [`Recognizer`] (the face detector is not `Send`).

use super::faults::{CallRecord, FaultAction, FaultRule, Faults, SandboxEndpoint, now_ms};
use super::http::{self, BodyError, Framing, Head, Pace, ReadError, Response};
use super::recognize::{Portrait, Recognizer, Refusal};
use super::state::{Document, Store, StoredRequest, random_id};
use super::{SandboxConfig, demo::DEMO_IDENTITY};
use crate::api::{ApiFields, ApiPaths};
use crate::secret::ApiKey;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The documented limit: bytes of base64 text per face image, or summed over a document's sides.
pub const BASE64_LIMIT: u64 = 30_000_000;
/// Room for the JSON around the base64 text in an upload body.
const JSON_ALLOWANCE: u64 = 64 * 1024;
/// Largest body of the other endpoints.
const SMALL_BODY_CAP: u64 = 64 * 1024;
/// How long to keep reading (and discarding) after an early answer, so the client reads it instead of a reset.
const LINGER: Duration = Duration::from_secs(2);
/// How long an upload waits for a decoding slot.
const SLOT_WAIT: Duration = Duration::from_secs(30);

/// The wire strings (contract sections 3 and 7). JSON bodies are sent exactly as written here.
pub mod wire {
    /// 401, every endpoint.
    pub const INVALID_API_KEY: &str = r#"{"error": "invalid api key"}"#;
    /// 413, plain text.
    pub const TOO_LARGE: &str = "Request Entity Too Large";
    /// E1: a URL given (never fetched).
    pub const DOCUMENT_INVALID: &str = r#"{"error": "invalid document (front, side, back) image provided"}"#;
    /// E1, E2: base64 that is not PNG or JPEG.
    pub const BASE64_INVALID: &str = r#"{"error": "invalid base64 front image provided"}"#;
    /// E1: URL and base64 for one side.
    pub const DOCUMENT_CONFLICT: &str = r#"{"error": "only one image is accepted per document side!"}"#;
    /// E1: not recognised.
    pub const NOT_RECOGNIZED: &str = r#"{"error": "The document supplied is not recognized!"}"#;
    /// E2: a URL given (never fetched), or no face image.
    pub const FACE_INVALID: &str = r#"{"error": "invalid face image provided"}"#;
    /// E2: URL and base64.
    pub const FACE_CONFLICT: &str = r#"{"error": "only one face image is accepted!"}"#;
    /// E2, E3, E4: unknown document id.
    pub const NO_DOCUMENT: &str = r#"{"error": "There is no document identification data with the provided id!"}"#;
    /// E2: mismatch.
    pub const FACE_MISMATCH: &str = r#"{"error": "Face match verification FAILED!"}"#;
    /// E3: a URL given (never fetched), or no video.
    pub const VIDEO_INVALID: &str = r#"{"error": "invalid face video provided"}"#;
    /// E3: bad base64 video.
    pub const VIDEO_BASE64_INVALID: &str = r#"{"error": "invalid base64 video provided"}"#;
    /// E3: URL and base64.
    pub const VIDEO_CONFLICT: &str = r#"{"error": "only one face video is accepted!"}"#;
    /// E3: liveness failed (the leading colon is the vendor's).
    pub const LIVENESS_FAILED: &str = r#"{"error": ":liveliness verification FAILED!"}"#;
    /// E4: created.
    pub const REQUEST_SUBMITTED: &str = r#"{"message": "Request submitted"}"#;
    /// E4, 409 (our choice; the vendor's text is unknown).
    pub const EMAIL_TAKEN: &str = r#"{"error": "a kyc request with this email already exists"}"#;
    /// E4, 409 (our choice).
    pub const PHONE_TAKEN: &str = r#"{"error": "a kyc request with this phone number already exists"}"#;
    /// E4, 400 (our choice).
    pub const EMAIL_INVALID: &str = r#"{"error": "invalid email address provided"}"#;
    /// E4, 400 (our choice).
    pub const PHONE_INVALID: &str = r#"{"error": "invalid phone number provided"}"#;
    /// E5: accepted.
    pub const ACCEPTED: &str = r#"{"message": "Kyc request accepted"}"#;
    /// E5: unknown id or not yet validated.
    pub const NOT_ACCEPTED: &str = r#"{"message": "Kyc request not accepted"}"#;
    /// E7, E9: unknown id, 404 (our choice).
    pub const REQUEST_NOT_FOUND: &str = r#"{"error": "request not found"}"#;
    /// E9: deleted.
    pub const DELETED: &str = r#"{"message": "KYC request deleted!"}"#;
    /// A body that is not a JSON object, or lacks a required field (our choice).
    pub const BAD_BODY: &str = r#"{"error": "invalid request body"}"#;
    /// 503 from a fault rule, a full connection queue or a busy decoder.
    pub const UNAVAILABLE: &str = r#"{"error": "service unavailable"}"#;
    /// 507 when the request store is full (our choice).
    pub const STORE_FULL: &str = r#"{"error": "sandbox request store is full; delete some requests"}"#;
}

/// A counting semaphore with a deadline (bounds how many uploads are buffered and decoded at once).
#[derive(Debug)]
pub(crate) struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots { free: Mutex::new(n.max(1)), cv: Condvar::new() }
    }

    fn acquire(&self, wait: Duration) -> Option<SlotGuard<'_>> {
        let deadline = Instant::now() + wait;
        let mut free = super::faults::lock(&self.free);
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            free = self.cv.wait_timeout(free, left).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
        *free -= 1;
        Some(SlotGuard { slots: self })
    }
}

struct SlotGuard<'a> {
    slots: &'a Slots,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *super::faults::lock(&self.slots.free) += 1;
        self.slots.cv.notify_one();
    }
}

/// Everything the workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) api_key: ApiKey,
    pub(crate) config: SandboxConfig,
    pub(crate) paths: ApiPaths,
    pub(crate) fields: ApiFields,
    pub(crate) faults: Faults,
    pub(crate) store: Mutex<Store>,
    pub(crate) stop: AtomicBool,
    pub(crate) slots: Slots,
}

/// Per-worker state.
pub(crate) struct Worker {
    recognizer: Option<Recognizer>,
}

impl Worker {
    pub(crate) fn new() -> Worker {
        Worker { recognizer: None }
    }

    fn recognizer(&mut self) -> Option<&mut Recognizer> {
        if self.recognizer.is_none() {
            match Recognizer::new() {
                Ok(r) => self.recognizer = Some(r),
                Err(e) => log::error!("sandbox: face detector does not load: {e}"),
            }
        }
        self.recognizer.as_mut()
    }
}

/// What happened to a request body.
#[derive(Debug, Default)]
struct BodyState {
    received: u64,
    complete: bool,
}

/// Serves one connection (one request).
pub(crate) fn serve(shared: &Shared, worker: &mut Worker, mut stream: TcpStream, peer: SocketAddr) {
    let cfg = &shared.config;
    let _ = stream.set_read_timeout(Some(cfg.io_timeout));
    let _ = stream.set_write_timeout(Some(cfg.io_timeout));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::with_capacity(http::MAX_HEAD_BYTES, read_half);
    let head = match http::read_head(&mut reader, Instant::now() + cfg.header_timeout, cfg.io_timeout) {
        Ok(h) => h,
        Err(ReadError::Closed) | Err(ReadError::Io(_)) => return,
        Err(e) => {
            let resp = match e {
                ReadError::Timeout => Response::json(408, r#"{"error": "request timeout"}"#),
                ReadError::HeadTooLarge => Response::json(431, r#"{"error": "request header fields too large"}"#),
                ReadError::Unsupported => Response::json(501, r#"{"error": "transfer coding not supported"}"#),
                ReadError::Malformed(why) => {
                    log::debug!("sandbox: malformed request from {peer}: {why}");
                    Response::json(400, r#"{"error": "bad request"}"#)
                }
                ReadError::Closed | ReadError::Io(_) => return,
            };
            let _ = http::write_response(&mut stream, &resp, Pace::Whole, &shared.stop);
            return;
        }
    };
    let at = now_ms();

    if head.path == "/_sandbox" || head.path.starts_with("/_sandbox/") {
        let mut body = BodyState::default();
        let resp = if !peer.ip().is_loopback() {
            Response::json(403, r#"{"error": "the control endpoint answers loopback clients only"}"#)
        } else if let Err(why) = control_allowed(&head) {
            log::info!("sandbox: control request refused: {why}");
            Response::json_value(403, &json!({"error": why}))
        } else {
            control(shared, &head, &mut reader, &mut stream, &mut body)
        };
        finish(shared, &mut stream, &head, &resp, Pace::Whole, &body);
        return;
    }

    let endpoint = match route(shared, &head) {
        Ok(e) => e,
        Err(resp) => {
            let body = BodyState::default();
            record(shared, None, &head, Some(resp.status), &body, at);
            finish(shared, &mut stream, &head, &resp, Pace::Whole, &body);
            return;
        }
    };

    let plan = shared.faults.plan(endpoint);
    let mut body = BodyState::default();
    let resp = match plan.outcome {
        Some(outcome) => {
            let cap = upload_cap(endpoint).unwrap_or(SMALL_BODY_CAP);
            let _ = read_body(shared, &head, &mut reader, &mut stream, cap, &mut body);
            match outcome {
                FaultAction::DropAfterBody => {
                    // The body was read; the answer never comes.
                    record(shared, Some(endpoint), &head, None, &body, at);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                FaultAction::Unavailable { retry_after } => {
                    let r = Response::json(503, wire::UNAVAILABLE);
                    match retry_after {
                        Some(s) => r.with_header("Retry-After", s.to_string()),
                        None => r,
                    }
                }
                FaultAction::Respond { status, body: b, content_type, headers, cut_after: Some(n) } => {
                    let resp = Response { status, content_type, headers, body: b.into_bytes() };
                    if !plan.latency.is_zero() && !http::sleep_unless(plan.latency, &shared.stop) {
                        return;
                    }
                    // Part of the answer, then the connection closes.
                    record(shared, Some(endpoint), &head, Some(status), &body, at);
                    let bytes = resp.to_bytes();
                    let _ = stream.write_all(&bytes[..n.min(bytes.len())]);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                FaultAction::Respond { status, body: b, content_type, headers, cut_after: None } => {
                    Response { status, content_type, headers, body: b.into_bytes() }
                }
                FaultAction::Latency { .. } | FaultAction::Trickle { .. } => {
                    // Never an outcome (plan() files them as modifiers).
                    Response::json(500, r#"{"error": "internal error"}"#)
                }
            }
        }
        None => endpoint_response(shared, worker, endpoint, &head, &mut reader, &mut stream, &mut body),
    };
    if !plan.latency.is_zero() && !http::sleep_unless(plan.latency, &shared.stop) {
        return;
    }
    let pace = match plan.trickle {
        Some((bytes, interval)) => Pace::Trickle { bytes, interval },
        None => Pace::Whole,
    };
    // Recorded before the answer goes out, so a client that has the answer also finds the call in the log.
    record(shared, Some(endpoint), &head, Some(resp.status), &body, at);
    finish(shared, &mut stream, &head, &resp, pace, &body);
}

fn record(
    shared: &Shared,
    endpoint: Option<SandboxEndpoint>,
    head: &Head,
    status: Option<u16>,
    b: &BodyState,
    at: u64,
) {
    shared.faults.record(CallRecord {
        endpoint,
        method: head.method.clone(),
        path: head.path.clone(),
        status,
        bytes_received: b.received,
        body_complete: b.complete || head.framing == Framing::None,
        at_unix_ms: at,
    });
}

/// Writes the answer, then, when the body was not read whole, lingers so the client can read it.
fn finish(shared: &Shared, stream: &mut TcpStream, head: &Head, resp: &Response, pace: Pace, body: &BodyState) {
    if let Err(e) = http::write_response(stream, resp, pace, &shared.stop) {
        log::debug!("sandbox: answer to {} {} not delivered: {e}", head.method, head.path);
        return;
    }
    if head.framing != Framing::None && !body.complete {
        let _ = stream.shutdown(Shutdown::Write);
        http::drain(stream, 2 * (BASE64_LIMIT + JSON_ALLOWANCE), Instant::now() + LINGER);
    }
}

/// Matches the path and method to an endpoint, or answers 404/405.
fn route(shared: &Shared, head: &Head) -> Result<SandboxEndpoint, Response> {
    let p = &shared.paths;
    let path = head.path.as_str();
    let (endpoint, method) = if path == p.document {
        (SandboxEndpoint::Document, "POST")
    } else if path == p.face {
        (SandboxEndpoint::Face, "POST")
    } else if path == p.liveness && shared.config.liveness_enabled {
        (SandboxEndpoint::Liveness, "POST")
    } else if path == p.create_request {
        (SandboxEndpoint::CreateRequest, "POST")
    } else if path == p.accept {
        (SandboxEndpoint::Accept, "PUT")
    } else if path == p.list {
        (SandboxEndpoint::List, "GET")
    } else if path == p.delete {
        (SandboxEndpoint::Delete, "DELETE")
    } else if show_id(&p.show, path).is_some() {
        (SandboxEndpoint::Show, "GET")
    } else {
        return Err(Response::json(404, r#"{"error": "not found"}"#));
    };
    if head.method != method {
        return Err(Response::json(405, r#"{"error": "method not allowed"}"#).with_header("Allow", method));
    }
    Ok(endpoint)
}

/// The id in a show path (`/api/requests/{id}`), percent-decoded; none when the path does not match.
fn show_id(template: &str, path: &str) -> Option<String> {
    let (pre, post) = template.split_once("{id}")?;
    let raw = path.strip_prefix(pre)?.strip_suffix(post)?;
    if raw.is_empty() || raw.contains('/') {
        return None;
    }
    let decoded = percent_decode(raw)?;
    (!decoded.is_empty()).then_some(decoded)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn upload_cap(endpoint: SandboxEndpoint) -> Option<u64> {
    matches!(endpoint, SandboxEndpoint::Document | SandboxEndpoint::Face | SandboxEndpoint::Liveness)
        .then_some(BASE64_LIMIT + JSON_ALLOWANCE)
}

fn too_large() -> Response {
    Response::text(413, wire::TOO_LARGE)
}

/// Reads the body under `cap`, answering `100 Continue` first when asked. Errors become the answer.
fn read_body(
    shared: &Shared,
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    stream: &mut TcpStream,
    cap: u64,
    body: &mut BodyState,
) -> Result<Vec<u8>, Response> {
    if let Framing::Length(n) = head.framing
        && n > cap
    {
        return Err(too_large());
    }
    if head.expects_continue() && head.framing != Framing::None {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let start = Instant::now();
    let pace = http::BodyPace {
        start,
        deadline: start + shared.config.body_timeout,
        io_timeout: shared.config.io_timeout,
        min_rate: shared.config.min_body_rate,
        grace: shared.config.body_rate_grace,
    };
    match http::read_body(reader, head.framing, cap, &pace, &mut body.received) {
        Ok(b) => {
            body.complete = true;
            Ok(b)
        }
        Err(BodyError::TooLarge) => Err(too_large()),
        Err(BodyError::Timeout) => Err(Response::json(408, r#"{"error": "request timeout"}"#)),
        Err(BodyError::TooSlow) => {
            log::info!(
                "sandbox: {} {} cut off: body below {} B/s",
                head.method,
                head.path,
                shared.config.min_body_rate
            );
            Err(Response::json(408, r#"{"error": "request body too slow"}"#))
        }
        Err(BodyError::Malformed) => Err(Response::json(400, r#"{"error": "bad request"}"#)),
        Err(BodyError::Io(e)) => {
            log::debug!("sandbox: body of {} {} not read: {e}", head.method, head.path);
            Err(Response::json(400, r#"{"error": "bad request"}"#))
        }
    }
}

/// A JSON value as the endpoints need it: strings borrowed from the body when they hold no escapes (a 30 MB
/// base64 string is not copied), anything else reduced to "not a string".
#[derive(Debug, Clone, PartialEq)]
enum Loose<'a> {
    /// `null`.
    Null,
    /// A string.
    Str(Cow<'a, str>),
    /// A number, boolean, array or object (its content skipped).
    Other,
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose<'de>, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Loose<'de>, E> {
                Ok(Loose::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Loose<'de>, E> {
                Ok(Loose::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Loose<'de>, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Loose<'de>, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose<'de>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A request body: a JSON object's top-level members.
type Body<'a> = HashMap<String, Loose<'a>>;

fn parse_object(bytes: &[u8]) -> Result<Body<'_>, Response> {
    serde_json::from_slice::<Body<'_>>(bytes).map_err(|_| Response::json(400, wire::BAD_BODY))
}

/// A member's string value.
fn str_of<'b>(obj: &'b Body<'_>, key: &str) -> Option<&'b str> {
    match obj.get(key) {
        Some(Loose::Str(s)) => Some(s),
        _ => None,
    }
}

/// One endpoint, after the fault table had nothing to say.
fn endpoint_response(
    shared: &Shared,
    worker: &mut Worker,
    endpoint: SandboxEndpoint,
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    stream: &mut TcpStream,
    body: &mut BodyState,
) -> Response {
    let key_ok = head.header("x-api-key").is_some_and(|k| shared.api_key.matches(k.as_bytes()));
    if !key_ok {
        return Response::json(401, wire::INVALID_API_KEY);
    }
    let result = match upload_cap(endpoint) {
        Some(cap) => {
            if let Framing::Length(n) = head.framing
                && n > cap
            {
                return too_large();
            }
            let Some(_slot) = shared.slots.acquire(SLOT_WAIT) else {
                return Response::json(503, wire::UNAVAILABLE).with_header("Retry-After", "1");
            };
            read_body(shared, head, reader, stream, cap, body).and_then(|bytes| {
                let obj = parse_object(&bytes)?;
                let Some(rec) = worker.recognizer() else {
                    return Err(Response::json(500, r#"{"error": "internal error"}"#));
                };
                match endpoint {
                    SandboxEndpoint::Document => document(shared, rec, &obj),
                    SandboxEndpoint::Face => face(shared, rec, &obj),
                    _ => liveness(shared, rec, &obj),
                }
            })
        }
        None => read_body(shared, head, reader, stream, SMALL_BODY_CAP, body).and_then(|bytes| match endpoint {
            SandboxEndpoint::CreateRequest => create_request(shared, &parse_object(&bytes)?),
            // The contract documents a missing id as this endpoint's 400, whatever the body.
            SandboxEndpoint::Accept => accept(shared, &parse_object(&bytes).unwrap_or_default()),
            SandboxEndpoint::List => list(shared, head),
            SandboxEndpoint::Show => show(shared, head),
            _ => delete(shared, &parse_object(&bytes)?),
        }),
    };
    result.unwrap_or_else(|r| r)
}

/// One image slot of an upload.
enum Slot<'a> {
    Absent,
    Url,
    Base64(&'a str),
    Both,
    /// A field of the wrong type.
    Invalid,
}

fn slot<'a>(obj: &'a Body<'_>, b64_field: &str) -> Slot<'a> {
    let url_field = b64_field.strip_suffix("_base64").unwrap_or(b64_field);
    let present = |v: Option<&Loose<'_>>| match v {
        None | Some(Loose::Null) => false,
        Some(Loose::Str(s)) => !s.is_empty(),
        Some(Loose::Other) => true,
    };
    let url = obj.get(url_field).filter(|_| url_field != b64_field);
    let b64 = obj.get(b64_field);
    match (present(url), present(b64)) {
        (true, true) => Slot::Both,
        (true, false) => Slot::Url,
        (false, true) => match b64 {
            Some(Loose::Str(s)) => Slot::Base64(s),
            _ => Slot::Invalid,
        },
        (false, false) => Slot::Absent,
    }
}

fn slot_len(s: &Slot<'_>) -> u64 {
    match s {
        Slot::Base64(t) => t.len() as u64,
        _ => 0,
    }
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 image text: raw, or with a `data:image/png|jpeg|jpg;base64,` prefix. None when it is not base64
/// of a PNG or JPEG.
fn decode_image(text: &str) -> Option<Vec<u8>> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => {
            let (mime, data) = rest.split_once(";base64,")?;
            if !matches!(mime.to_ascii_lowercase().as_str(), "image/png" | "image/jpeg" | "image/jpg") {
                return None;
            }
            data
        }
        None => text,
    };
    let bytes = LENIENT.decode(payload.trim().as_bytes()).ok()?;
    super::recognize::sniff(&bytes).map(|_| bytes)
}

fn document_id<'b>(obj: &'b Body<'_>) -> Option<&'b str> {
    str_of(obj, "documentIdentificationId")
}

/// E1.
fn document(shared: &Shared, rec: &mut Recognizer, obj: &Body<'_>) -> Result<Response, Response> {
    let f = &shared.fields;
    let sides = [slot(obj, &f.front), slot(obj, &f.back), slot(obj, &f.side)];
    if sides.iter().map(slot_len).sum::<u64>() > BASE64_LIMIT {
        return Err(too_large());
    }
    if sides.iter().any(|s| matches!(s, Slot::Both)) {
        return Err(Response::json(400, wire::DOCUMENT_CONFLICT));
    }
    if matches!(sides[0], Slot::Absent) || sides.iter().any(|s| matches!(s, Slot::Url)) {
        return Err(Response::json(400, wire::DOCUMENT_INVALID));
    }
    let mut decoded = Vec::new();
    for s in &sides {
        match s {
            Slot::Base64(t) => {
                decoded.push(Some(decode_image(t).ok_or_else(|| Response::json(400, wire::BASE64_INVALID))?))
            }
            Slot::Invalid => return Err(Response::json(400, wire::BASE64_INVALID)),
            _ => decoded.push(None),
        }
    }
    let refusal = |r: Refusal| match r {
        Refusal::NotAnImage => Response::json(400, wire::BASE64_INVALID),
        Refusal::NotRecognized | Refusal::NoFace => Response::json(400, wire::NOT_RECOGNIZED),
    };
    let front = decoded[0].as_deref().unwrap_or_default();
    let portrait = rec.document_front(front).map_err(refusal)?;
    for other in decoded[1..].iter().flatten() {
        rec.document_other(other).map_err(refusal)?;
    }
    drop(decoded);
    let id = random_id();
    let id_information = DEMO_IDENTITY.id_information(SystemTime::now());
    let mut store = super::faults::lock(&shared.store);
    store.add_document(Document { id: id.clone(), portrait, id_information: id_information.clone(), face_match: None });
    save(&store)?;
    log::info!("sandbox: document {id} recognised");
    Ok(Response::json_value(200, &json!({"success": true, "documentIdentificationId": id, "result": id_information})))
}

fn save(store: &Store) -> Result<(), Response> {
    store.save().map_err(|e| {
        log::error!("sandbox: {e}");
        Response::json(500, r#"{"error": "sandbox state could not be saved"}"#)
    })
}

fn portrait_of(shared: &Shared, obj: &Body<'_>) -> Result<(String, Portrait), Response> {
    let store = super::faults::lock(&shared.store);
    document_id(obj)
        .and_then(|id| store.document(id))
        .map(|d| (d.id.clone(), d.portrait.clone()))
        .ok_or_else(|| Response::json(400, wire::NO_DOCUMENT))
}

/// The score as sent: three decimals.
fn rounded(score: f64) -> f64 {
    (score * 1000.0).round() / 1000.0
}

/// E2.
fn face(shared: &Shared, rec: &mut Recognizer, obj: &Body<'_>) -> Result<Response, Response> {
    let s = slot(obj, &shared.fields.face);
    if slot_len(&s) > BASE64_LIMIT {
        return Err(too_large());
    }
    let bytes = match s {
        Slot::Both => return Err(Response::json(400, wire::FACE_CONFLICT)),
        Slot::Absent | Slot::Url => return Err(Response::json(400, wire::FACE_INVALID)),
        Slot::Invalid => return Err(Response::json(400, wire::BASE64_INVALID)),
        Slot::Base64(t) => decode_image(t).ok_or_else(|| Response::json(400, wire::BASE64_INVALID))?,
    };
    let (doc_id, portrait) = portrait_of(shared, obj)?;
    let selfie = match rec.face(&bytes) {
        Ok(p) => p,
        Err(Refusal::NotAnImage) => return Err(Response::json(400, wire::BASE64_INVALID)),
        Err(_) => return Err(Response::json(400, wire::FACE_MISMATCH)),
    };
    let score = rounded(portrait.similarity(&selfie));
    if score < shared.config.face_match_threshold {
        log::info!("sandbox: face match for document {doc_id} failed (score {score})");
        return Err(Response::json(400, wire::FACE_MISMATCH));
    }
    let mut store = super::faults::lock(&shared.store);
    store.set_face_match(&doc_id, score);
    save(&store)?;
    log::info!("sandbox: face matched document {doc_id} (score {score})");
    Ok(Response::json_value(200, &json!({"success": true, "score": score})))
}

/// E3.
fn liveness(shared: &Shared, rec: &mut Recognizer, obj: &Body<'_>) -> Result<Response, Response> {
    let s = slot(obj, &shared.fields.liveness);
    if slot_len(&s) > BASE64_LIMIT {
        return Err(too_large());
    }
    let text = match s {
        Slot::Both => return Err(Response::json(400, wire::VIDEO_CONFLICT)),
        Slot::Absent | Slot::Url => return Err(Response::json(400, wire::VIDEO_INVALID)),
        Slot::Invalid => return Err(Response::json(400, wire::VIDEO_BASE64_INVALID)),
        Slot::Base64(t) => t,
    };
    let invalid = || Response::json(400, wire::VIDEO_BASE64_INVALID);
    let rest = text.strip_prefix("data:video/").ok_or_else(invalid)?;
    let (_, payload) = rest.split_once(";base64,").ok_or_else(invalid)?;
    let clip = LENIENT.decode(payload.trim().as_bytes()).map_err(|_| invalid())?;
    let container = super::recognize::sniff_video(&clip).ok_or_else(invalid)?;
    let (_, portrait) = portrait_of(shared, obj)?;
    let passed = super::recognize::liveness(rec, &clip, container, &portrait, shared.config.face_match_threshold);
    if !passed {
        return Err(Response::json(400, wire::LIVENESS_FAILED));
    }
    Ok(Response::json_value(200, &json!({"success": true, "passed": true})))
}

/// E4.
fn create_request(shared: &Shared, obj: &Body<'_>) -> Result<Response, Response> {
    let email = str_of(obj, "email").unwrap_or_default();
    let phone = str_of(obj, "phoneNumber").unwrap_or_default();
    let email = crate::contact::Email::parse(email).map_err(|_| Response::json(400, wire::EMAIL_INVALID))?;
    let phone_digits = crate::contact::Phone::parse(phone).map_err(|_| Response::json(400, wire::PHONE_INVALID))?;
    let mut store = super::faults::lock(&shared.store);
    let doc =
        document_id(obj).and_then(|id| store.document(id)).ok_or_else(|| Response::json(400, wire::NO_DOCUMENT))?;
    let (doc_id, face_match, id_information) = (doc.id.clone(), doc.face_match, doc.id_information.clone());
    match store.contact_taken(email.as_str(), phone_digits.digits()) {
        (true, _) => return Err(Response::json(409, wire::EMAIL_TAKEN)),
        (_, true) => return Err(Response::json(409, wire::PHONE_TAKEN)),
        _ => {}
    }
    if store.requests_full() {
        return Err(Response::json(507, wire::STORE_FULL));
    }
    let id = random_id();
    store.add_request(StoredRequest {
        id: id.clone(),
        email: email.as_str().to_string(),
        phone_number: phone.trim().to_string(),
        phone_digits: phone_digits.digits().to_string(),
        document_id: doc_id,
        created_unix_ms: now_ms(),
        accepted: false,
        face_match,
        id_information,
    });
    if let Err(r) = save(&store) {
        store.delete_request(&id);
        return Err(r);
    }
    log::info!("sandbox: request {id} created");
    Ok(Response::json(201, wire::REQUEST_SUBMITTED))
}

fn is_validated(shared: &Shared, r: &StoredRequest) -> bool {
    now_ms().saturating_sub(r.created_unix_ms) >= shared.config.validation_delay.as_millis() as u64
}

/// E5.
fn accept(shared: &Shared, obj: &Body<'_>) -> Result<Response, Response> {
    let id = str_of(obj, "id").unwrap_or_default();
    let mut store = super::faults::lock(&shared.store);
    let validated = store.request(id).map(|r| is_validated(shared, r));
    match (validated, store.request_mut(id)) {
        (Some(true), Some(r)) => {
            let was = r.accepted;
            r.accepted = true;
            if !was {
                save(&store)?;
            }
            Ok(Response::json(200, wire::ACCEPTED))
        }
        _ => Err(Response::json(400, wire::NOT_ACCEPTED)),
    }
}

/// E6.
fn list(shared: &Shared, head: &Head) -> Result<Response, Response> {
    let filter = match head.query_param("accepted") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(Response::json(400, r#"{"error": "accepted must be true or false"}"#)),
    };
    let store = super::faults::lock(&shared.store);
    let now = now_ms();
    let items: Vec<Value> = store
        .requests()
        .iter()
        .filter(|r| filter.is_none_or(|a| r.accepted == a))
        .map(|r| r.to_json(now, shared.config.validation_delay))
        .collect();
    Ok(Response::json_value(200, &json!({"requests": items})))
}

/// E7.
fn show(shared: &Shared, head: &Head) -> Result<Response, Response> {
    let id = show_id(&shared.paths.show, &head.path).unwrap_or_default();
    let store = super::faults::lock(&shared.store);
    let r = store.request(&id).ok_or_else(|| Response::json(404, wire::REQUEST_NOT_FOUND))?;
    Ok(Response::json_value(200, &json!({"requests": [r.to_json(now_ms(), shared.config.validation_delay)]})))
}

/// E9.
fn delete(shared: &Shared, obj: &Body<'_>) -> Result<Response, Response> {
    let id = str_of(obj, "id").unwrap_or_default();
    let mut store = super::faults::lock(&shared.store);
    if !store.delete_request(id) {
        return Err(Response::json(404, wire::REQUEST_NOT_FOUND));
    }
    save(&store)?;
    log::info!("sandbox: request {id} deleted");
    Ok(Response::json(200, wire::DELETED))
}

/// The header a control request must carry. A web page can make a browser send a simple cross-site request to
/// loopback, but not one with a custom header (that needs a CORS preflight, which the sandbox never grants).
pub const CONTROL_HEADER: &str = "x-sandbox-control";

/// A control request is one a local tool made on purpose: its `Host` names a loopback address (a page on a
/// rebinding domain sends its own name) and it carries [`CONTROL_HEADER`].
fn control_allowed(head: &Head) -> Result<(), &'static str> {
    let host = head.header("host").ok_or("the Host header is missing")?;
    if !is_loopback_host(host) {
        return Err("the Host header must name a loopback address (127.0.0.1, [::1] or localhost)");
    }
    if head.header(CONTROL_HEADER).is_none() {
        return Err("control requests need the x-sandbox-control header");
    }
    Ok(())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inner, tail)) if tail.is_empty() || tail.starts_with(':') => inner,
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The control endpoint (`/_sandbox/...`), loopback peers only.
fn control(
    shared: &Shared,
    head: &Head,
    reader: &mut BufReader<TcpStream>,
    stream: &mut TcpStream,
    body: &mut BodyState,
) -> Response {
    let bytes = match read_body(shared, head, reader, stream, SMALL_BODY_CAP, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ok = || Response::json(200, r#"{"ok": true}"#);
    let bad = |msg: String| Response::json_value(400, &json!({"error": msg}));
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/_sandbox/faults") => Response::json_value(200, &json!(shared.faults.rules())),
        ("POST", "/_sandbox/faults") => match serde_json::from_slice::<FaultRule>(&bytes) {
            Ok(rule) => match shared.faults.add(rule) {
                Ok(()) => Response::json(201, r#"{"ok": true}"#),
                Err(e) => bad(e.to_string()),
            },
            Err(e) => bad(format!("invalid fault rule: {e}")),
        },
        ("DELETE", "/_sandbox/faults") => {
            shared.faults.clear();
            ok()
        }
        ("GET", "/_sandbox/calls") => Response::json_value(200, &json!(shared.faults.calls())),
        ("DELETE", "/_sandbox/calls") => {
            shared.faults.clear_calls();
            ok()
        }
        ("POST", "/_sandbox/reset") => {
            let wipe = !bytes.is_empty()
                && serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("state")?.as_bool()) == Some(true);
            shared.faults.clear();
            shared.faults.clear_calls();
            if wipe {
                let mut store = super::faults::lock(&shared.store);
                store.wipe();
                if let Err(r) = save(&store) {
                    return r;
                }
            }
            ok()
        }
        ("GET", "/_sandbox/rules") => {
            let mut r = Response::text(200, super::rules_markdown());
            r.content_type = "text/markdown; charset=utf-8".into();
            r
        }
        (_, "/_sandbox/faults" | "/_sandbox/calls" | "/_sandbox/reset" | "/_sandbox/rules") => {
            Response::json(405, r#"{"error": "method not allowed"}"#)
        }
        _ => Response::json(404, r#"{"error": "not found"}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose;

    #[test]
    fn control_hosts_are_loopback_names_only() {
        for ok in ["127.0.0.1:8080", "127.0.0.1", "127.1.2.3:1", "localhost:9", "LOCALHOST", "[::1]:80", "[::1]"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1.evil.example", "10.0.0.1:80", "[::1]x", "", "localhost.evil:1"] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn show_ids_are_extracted_and_decoded() {
        assert_eq!(show_id("/api/requests/{id}", "/api/requests/abc-1").as_deref(), Some("abc-1"));
        assert_eq!(show_id("/api/requests/{id}", "/api/requests/a%20b").as_deref(), Some("a b"));
        assert_eq!(show_id("/api/requests/{id}", "/api/requests/"), None);
        assert_eq!(show_id("/api/requests/{id}", "/api/requests/a/b"), None);
        assert_eq!(show_id("/api/request/{id}/x", "/api/request/7/x").as_deref(), Some("7"));
        assert_eq!(show_id("/api/requests/{id}", "/api/requests/%zz"), None);
    }

    #[test]
    fn bodies_borrow_plain_strings_and_reduce_other_values() {
        let text = br#"{"a": "plain", "b": "esc\/aped", "c": 7, "d": null, "e": [1, {"x": 2}], "f": {"y": "z"}}"#;
        let body = parse_object(text).unwrap();
        assert!(matches!(body.get("a"), Some(Loose::Str(Cow::Borrowed("plain")))));
        assert!(matches!(body.get("b"), Some(Loose::Str(Cow::Owned(s))) if s == "esc/aped"));
        assert_eq!(body.get("c"), Some(&Loose::Other));
        assert_eq!(body.get("d"), Some(&Loose::Null));
        assert_eq!((body.get("e"), body.get("f")), (Some(&Loose::Other), Some(&Loose::Other)));
        assert_eq!(str_of(&body, "a"), Some("plain"));
        assert_eq!(str_of(&body, "c"), None);
        for bad in [&b"[1]"[..], b"", b"{", b"\"s\""] {
            assert_eq!(parse_object(bad).unwrap_err().status, 400);
        }
    }

    #[test]
    fn images_decode_raw_or_with_a_data_uri_prefix_only_when_png_or_jpeg() {
        let jpeg = general_purpose::STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
        assert!(decode_image(&jpeg).is_some());
        assert!(decode_image(&format!("data:image/jpeg;base64,{jpeg}")).is_some());
        assert!(decode_image(&format!("data:image/gif;base64,{jpeg}")).is_none());
        assert!(decode_image(&general_purpose::STANDARD.encode(b"GIF89a")).is_none());
        assert!(decode_image("not base64 !!").is_none());
        assert!(decode_image(jpeg.trim_end_matches('=')).is_some(), "padding is optional");
    }
}
