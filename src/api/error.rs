//! [`ApiError`]: one variant per documented Lapis error, plus transport, timeout and unexpected-response variants,
//! each with its stable code and class; the routing table that turns (endpoint, status, exact error string) into a
//! variant; `Retry-After` parsing; and the sanitiser for the short body excerpts that unexpected answers may carry.
//! Pure functions and data, any thread.
//!
//! Nothing here ever holds the API key or a success body: a success body carries OCR data, so parse failures of
//! one are described in our own words only.

use super::codes::{ErrorClass, ErrorCode, Prompt};
use super::endpoint::Endpoint;
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// The longest `Retry-After` honoured: a server asking for more is waited on for this long, then tried again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The exact text of the "unknown document id" error, shared by E2, E3 and (inferred) E4.
pub(crate) const NO_DOCUMENT: &str = "There is no document identification data with the provided id!";

/// A failed call to the Lapis API.
///
/// Display messages are lower-case, hold no secret, and no body text except a short sanitised excerpt of an
/// undocumented error answer in [`ApiError::UnexpectedResponse`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApiError {
    /// 401 on any endpoint: the API key is missing, wrong or revoked.
    #[error("{endpoint}: the api key was refused")]
    InvalidApiKey {
        /// Where it happened.
        endpoint: Endpoint,
    },
    /// E1 400 "invalid document (front, side, back) image provided": the server could not fetch or read an image.
    #[error("document: the server could not read a document image")]
    DocumentImageInvalid,
    /// E1 400 "invalid base64 front image provided": a side did not decode as PNG or JPEG.
    #[error("document: the server could not decode a document image")]
    DocumentBase64Invalid,
    /// E1 400 "only one image is accepted per document side!": a URL and base64 were both sent for one side.
    #[error("document: the server saw two images for one document side")]
    DocumentImageConflict,
    /// E1 400 "The document supplied is not recognized!": unreadable, unsupported, or failed the authenticity check.
    #[error("document: the document was not recognised")]
    DocumentNotRecognized,
    /// The base64 is over the 30,000,000-byte limit: refused before sending (`base64_len` is set, no request was
    /// made), or answered 413 by the server (`base64_len` is `None`).
    #[error("{endpoint}: {}", too_large_message(*.base64_len))]
    PayloadTooLarge {
        /// Where it happened.
        endpoint: Endpoint,
        /// The base64 length refused locally, when it was.
        base64_len: Option<u64>,
    },
    /// E2 400 "invalid face image provided": the server could not fetch or read the face image.
    #[error("face: the server could not read the face image")]
    FaceImageInvalid,
    /// E2 400 "invalid base64 front image provided" (the E1 text, routed by endpoint): the face did not decode.
    #[error("face: the server could not decode the face image")]
    FaceBase64Invalid,
    /// E2 400 "only one face image is accepted!": a URL and base64 were both sent.
    #[error("face: the server saw two face images")]
    FaceImageConflict,
    /// E2/E3/E4 400 "There is no document identification data with the provided id!": unknown or expired id.
    #[error("{endpoint}: the server has no document with this id")]
    DocumentSessionNotFound {
        /// Where it happened.
        endpoint: Endpoint,
    },
    /// E2 400 "Face match verification FAILED!", or a 200 whose score is under `face_match.min_score`.
    #[error("face: the face does not match the document portrait{}", score_suffix(*.score))]
    FaceMismatch {
        /// The score of a 200 answer under the configured minimum; `None` when the server refused the match.
        score: Option<f64>,
    },
    /// E3 400 "invalid face video provided": the video URL could not be fetched or is not valid.
    #[error("liveness: the server could not read the video")]
    LivenessVideoInvalid,
    /// E3 400 "invalid base64 video provided": the clip did not decode.
    #[error("liveness: the server could not decode the video")]
    LivenessBase64Invalid,
    /// E3 400 "only one face video is accepted!": a URL and base64 were both sent.
    #[error("liveness: the server saw two videos")]
    LivenessVideoConflict,
    /// E3 400 ":liveliness verification FAILED!": the liveness test failed.
    #[error("liveness: the liveness check failed")]
    LivenessFailed,
    /// E4 409 (any body): the email or phone number already belongs to a request.
    #[error("create_request: the email or phone number is already used by a request")]
    ContactAlreadyUsed,
    /// E5 400 `{"message": "Kyc request not accepted"}` (or any other E5 400): unknown id or wrong state.
    #[error("accept: the request was not accepted")]
    RequestNotAccepted,
    /// E5/E7/E9: no request has that id (404, an empty `requests` list, or an empty id refused locally).
    #[error("{endpoint}: no request has this id")]
    RequestNotFound {
        /// Where it happened.
        endpoint: Endpoint,
        /// The answer's status; `None` when refused locally.
        status: Option<u16>,
    },
    /// The image source failed while the body was being sent (a read error, or fewer or more bytes than declared).
    /// No complete request reached the server. Sources are the kiosk's own stored images, so this is the kiosk's
    /// fault ([`ErrorCode::StoredImageUnreadable`], an operator alert), never the customer's.
    #[error("{endpoint}: could not read the image to send: {reason}")]
    ImageUnreadable {
        /// Where it happened.
        endpoint: Endpoint,
        /// What went wrong with the source, in our words.
        reason: String,
    },
    /// The server could not be reached (DNS, refused, TLS), or the connection broke before a complete answer.
    /// When `body_sent`, the whole request had been handed over: the attempt is ambiguous.
    #[error("{endpoint}: network failure: {reason}{}", sent_suffix(*.body_sent))]
    NetworkUnreachable {
        /// Where it happened.
        endpoint: Endpoint,
        /// What failed, in our words.
        reason: String,
        /// Whether the whole request body had been handed to the connection.
        body_sent: bool,
    },
    /// The TLS handshake failed: the server's certificate is not trusted (unknown CA, expired, another host's), or
    /// the server does not speak TLS. Nothing was sent. An operator must act; retrying alone will not help.
    #[error("{endpoint}: tls failure: {reason}")]
    Tls {
        /// Where it happened.
        endpoint: Endpoint,
        /// What the TLS layer said, in our words.
        reason: String,
    },
    /// The bank's gateway refused this kiosk's certificate: none was sent, it is not from the kiosk CA, or it is
    /// revoked or expired (nginx's 400 "No required SSL certificate was sent" / "The SSL certificate error" pages, or
    /// a TLS alert such as `certificate_revoked`). Nothing reached the vendor. Sending pauses until it is fixed.
    #[error("{endpoint}: the gateway refused this kiosk's certificate: {reason}")]
    CertificateRefused {
        /// Where it happened.
        endpoint: Endpoint,
        /// The answer's status (400), or `None` for a TLS alert.
        status: Option<u16>,
        /// What the gateway or the TLS layer said, in our words.
        reason: String,
    },
    /// The bank's gateway answered 403 with its JSON refusal: this kiosk's certificate may not make this call (an
    /// operator call: list, show, accept, delete).
    #[error("{endpoint}: this kiosk is not allowed to do that (the gateway refused the call)")]
    KioskNotAllowed {
        /// Where it happened.
        endpoint: Endpoint,
    },
    /// A 5xx, 408 or 429 answer, or a gateway's error page: the service is having trouble.
    #[error("{endpoint}: the server is having trouble (http {status})")]
    ServerError {
        /// Where it happened.
        endpoint: Endpoint,
        /// The status.
        status: u16,
        /// The wait the server asked for (`Retry-After`), capped at [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
    },
    /// A deadline passed. When `body_sent`, the whole request had been handed over: the attempt is ambiguous.
    #[error("{endpoint}: timed out {stage}{}", sent_suffix(*.body_sent))]
    Timeout {
        /// Where it happened.
        endpoint: Endpoint,
        /// Which wait ran out, in words ("while connecting", "waiting for the answer", ...).
        stage: &'static str,
        /// Whether the whole request body had been handed to the connection.
        body_sent: bool,
    },
    /// An answer the contract does not describe: an unknown 4xx, a redirect, a malformed or oversized body.
    #[error("{endpoint}: unexpected response{}: {detail}", status_suffix(*.status))]
    UnexpectedResponse {
        /// Where it happened.
        endpoint: Endpoint,
        /// The status, when an answer came.
        status: Option<u16>,
        /// What was wrong, in our words, with at most a short sanitised excerpt of an error answer.
        detail: String,
    },
    /// The client is misconfigured (a base URL that is not https, an unusable key, liveness called while disabled).
    /// No request was made.
    #[error("api client configuration: {reason}")]
    Config {
        /// What is wrong, naming the configuration key.
        reason: String,
    },
}

fn too_large_message(local: Option<u64>) -> String {
    match local {
        Some(n) => format!("refused to send {n} bytes of base64, over the 30000000-byte limit"),
        None => "the server refused the upload as too large".to_string(),
    }
}

fn score_suffix(score: Option<f64>) -> String {
    score.map(|s| format!(" (score {s:.3} under the configured minimum)")).unwrap_or_default()
}

fn sent_suffix(body_sent: bool) -> &'static str {
    if body_sent { " after the request was sent; it may have been processed" } else { "" }
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (http {s})")).unwrap_or_default()
}

impl ApiError {
    /// The stable code (`src/api/codes.rs`).
    pub fn code(&self) -> ErrorCode {
        use ApiError as E;
        match self {
            E::InvalidApiKey { .. } => ErrorCode::InvalidApiKey,
            E::DocumentImageInvalid => ErrorCode::DocumentImageInvalid,
            E::DocumentBase64Invalid => ErrorCode::DocumentBase64Invalid,
            E::DocumentImageConflict => ErrorCode::DocumentImageConflict,
            E::DocumentNotRecognized => ErrorCode::DocumentNotRecognized,
            E::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            E::FaceImageInvalid => ErrorCode::FaceImageInvalid,
            E::FaceBase64Invalid => ErrorCode::FaceBase64Invalid,
            E::FaceImageConflict => ErrorCode::FaceImageConflict,
            E::DocumentSessionNotFound { .. } => ErrorCode::DocumentSessionNotFound,
            E::FaceMismatch { .. } => ErrorCode::FaceMismatch,
            E::LivenessVideoInvalid => ErrorCode::LivenessVideoInvalid,
            E::LivenessBase64Invalid => ErrorCode::LivenessBase64Invalid,
            E::LivenessVideoConflict => ErrorCode::LivenessVideoConflict,
            E::LivenessFailed => ErrorCode::LivenessFailed,
            E::ContactAlreadyUsed => ErrorCode::ContactAlreadyUsed,
            E::RequestNotAccepted => ErrorCode::RequestNotAccepted,
            E::RequestNotFound { .. } => ErrorCode::RequestNotFound,
            // The kiosk failed to read back what it stored: a local fault for an operator, not a retake prompt.
            E::ImageUnreadable { .. } => ErrorCode::StoredImageUnreadable,
            E::NetworkUnreachable { .. } => ErrorCode::NetworkUnreachable,
            E::Tls { .. } => ErrorCode::TlsFailure,
            E::CertificateRefused { .. } => ErrorCode::CertificateRefused,
            E::KioskNotAllowed { .. } => ErrorCode::KioskNotAllowed,
            E::ServerError { .. } => ErrorCode::ServerError,
            E::Timeout { .. } => ErrorCode::Timeout,
            E::UnexpectedResponse { .. } | E::Config { .. } => ErrorCode::UnexpectedResponse,
        }
    }

    /// How the machine handles it: the code's class, except that a transport failure after the whole body was
    /// handed over is [`ErrorClass::Ambiguous`].
    pub fn class(&self) -> ErrorClass {
        match self {
            ApiError::NetworkUnreachable { body_sent: true, .. } | ApiError::Timeout { body_sent: true, .. } => {
                ErrorClass::Ambiguous
            }
            _ => self.code().prompt().class,
        }
    }

    /// The body was fully sent but no answer came: the server may have processed it.
    pub fn is_ambiguous(&self) -> bool {
        self.class() == ErrorClass::Ambiguous
    }

    /// Retrying the same input cannot help (the customer or an operator must act).
    pub fn is_permanent(&self) -> bool {
        matches!(self.class(), ErrorClass::CustomerMustAct | ErrorClass::Fatal)
    }

    /// The HTTP status of the answer behind this error, if one came.
    pub fn http_status(&self) -> Option<u16> {
        use ApiError as E;
        match self {
            E::InvalidApiKey { .. } => Some(401),
            E::DocumentImageInvalid
            | E::DocumentBase64Invalid
            | E::DocumentImageConflict
            | E::DocumentNotRecognized
            | E::FaceImageInvalid
            | E::FaceBase64Invalid
            | E::FaceImageConflict
            | E::DocumentSessionNotFound { .. }
            | E::LivenessVideoInvalid
            | E::LivenessBase64Invalid
            | E::LivenessVideoConflict
            | E::LivenessFailed
            | E::RequestNotAccepted => Some(400),
            E::PayloadTooLarge { base64_len, .. } => base64_len.is_none().then_some(413),
            E::FaceMismatch { score } => Some(if score.is_some() { 200 } else { 400 }),
            E::ContactAlreadyUsed => Some(409),
            E::KioskNotAllowed { .. } => Some(403),
            E::CertificateRefused { status, .. } => *status,
            E::RequestNotFound { status, .. } | E::UnexpectedResponse { status, .. } => *status,
            E::ServerError { status, .. } => Some(*status),
            E::ImageUnreadable { .. }
            | E::NetworkUnreachable { .. }
            | E::Tls { .. }
            | E::Timeout { .. }
            | E::Config { .. } => None,
        }
    }

    /// The wait the server asked for with `Retry-After` (seconds or an HTTP date), capped at [`MAX_RETRY_AFTER`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::ServerError { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The endpoint the call went to (`None` for a configuration error).
    pub fn endpoint(&self) -> Option<Endpoint> {
        use ApiError as E;
        match self {
            E::DocumentImageInvalid
            | E::DocumentBase64Invalid
            | E::DocumentImageConflict
            | E::DocumentNotRecognized => Some(Endpoint::Document),
            E::FaceImageInvalid | E::FaceBase64Invalid | E::FaceImageConflict | E::FaceMismatch { .. } => {
                Some(Endpoint::Face)
            }
            E::LivenessVideoInvalid | E::LivenessBase64Invalid | E::LivenessVideoConflict | E::LivenessFailed => {
                Some(Endpoint::Liveness)
            }
            E::ContactAlreadyUsed => Some(Endpoint::CreateRequest),
            E::RequestNotAccepted => Some(Endpoint::Accept),
            E::InvalidApiKey { endpoint }
            | E::PayloadTooLarge { endpoint, .. }
            | E::DocumentSessionNotFound { endpoint }
            | E::RequestNotFound { endpoint, .. }
            | E::ImageUnreadable { endpoint, .. }
            | E::NetworkUnreachable { endpoint, .. }
            | E::Tls { endpoint, .. }
            | E::CertificateRefused { endpoint, .. }
            | E::KioskNotAllowed { endpoint }
            | E::ServerError { endpoint, .. }
            | E::Timeout { endpoint, .. }
            | E::UnexpectedResponse { endpoint, .. } => Some(*endpoint),
            E::Config { .. } => None,
        }
    }

    /// The prompt table row for this error's code.
    pub fn prompt(&self) -> Prompt {
        self.code().prompt()
    }

    /// Builds the variant for a documented code routed from an answer.
    fn documented(code: ErrorCode, endpoint: Endpoint, status: u16) -> ApiError {
        use ErrorCode as C;
        match code {
            C::InvalidApiKey => ApiError::InvalidApiKey { endpoint },
            C::DocumentImageInvalid => ApiError::DocumentImageInvalid,
            C::DocumentBase64Invalid => ApiError::DocumentBase64Invalid,
            C::DocumentImageConflict => ApiError::DocumentImageConflict,
            C::DocumentNotRecognized => ApiError::DocumentNotRecognized,
            C::PayloadTooLarge => ApiError::PayloadTooLarge { endpoint, base64_len: None },
            C::FaceImageInvalid => ApiError::FaceImageInvalid,
            C::FaceBase64Invalid => ApiError::FaceBase64Invalid,
            C::FaceImageConflict => ApiError::FaceImageConflict,
            C::DocumentSessionNotFound => ApiError::DocumentSessionNotFound { endpoint },
            C::FaceMismatch => ApiError::FaceMismatch { score: None },
            C::LivenessVideoInvalid => ApiError::LivenessVideoInvalid,
            C::LivenessBase64Invalid => ApiError::LivenessBase64Invalid,
            C::LivenessVideoConflict => ApiError::LivenessVideoConflict,
            C::LivenessFailed => ApiError::LivenessFailed,
            C::ContactAlreadyUsed => ApiError::ContactAlreadyUsed,
            C::RequestNotAccepted => ApiError::RequestNotAccepted,
            C::RequestNotFound => ApiError::RequestNotFound { endpoint, status: Some(status) },
            C::NetworkUnreachable
            | C::ServerError
            | C::Timeout
            | C::UnexpectedResponse
            | C::StoredImageUnreadable
            | C::TlsFailure
            | C::CertificateRefused
            | C::KioskNotAllowed => {
                ApiError::UnexpectedResponse { endpoint, status: Some(status), detail: "an undocumented answer".into() }
            }
        }
    }
}

/// Documented answers matched on (endpoint, status, exact error text). Checked first.
#[rustfmt::skip]
const BY_TEXT: &[(Endpoint, u16, &str, ErrorCode)] = &[
    (Endpoint::Document, 400, "invalid document (front, side, back) image provided", ErrorCode::DocumentImageInvalid),
    (Endpoint::Document, 400, "invalid base64 front image provided", ErrorCode::DocumentBase64Invalid),
    (Endpoint::Document, 400, "only one image is accepted per document side!", ErrorCode::DocumentImageConflict),
    (Endpoint::Document, 400, "The document supplied is not recognized!", ErrorCode::DocumentNotRecognized),
    (Endpoint::Face, 400, "invalid face image provided", ErrorCode::FaceImageInvalid),
    (Endpoint::Face, 400, "invalid base64 front image provided", ErrorCode::FaceBase64Invalid),
    (Endpoint::Face, 400, "only one face image is accepted!", ErrorCode::FaceImageConflict),
    (Endpoint::Face, 400, NO_DOCUMENT, ErrorCode::DocumentSessionNotFound),
    (Endpoint::Face, 400, "Face match verification FAILED!", ErrorCode::FaceMismatch),
    (Endpoint::Liveness, 400, "invalid face video provided", ErrorCode::LivenessVideoInvalid),
    (Endpoint::Liveness, 400, "invalid base64 video provided", ErrorCode::LivenessBase64Invalid),
    (Endpoint::Liveness, 400, "only one face video is accepted!", ErrorCode::LivenessVideoConflict),
    (Endpoint::Liveness, 400, NO_DOCUMENT, ErrorCode::DocumentSessionNotFound),
    (Endpoint::Liveness, 400, ":liveliness verification FAILED!", ErrorCode::LivenessFailed),
    (Endpoint::CreateRequest, 400, NO_DOCUMENT, ErrorCode::DocumentSessionNotFound),
    (Endpoint::Accept, 400, "Kyc request not accepted", ErrorCode::RequestNotAccepted),
];

/// Fallbacks on (endpoint, status) whatever the body; `None` matches every endpoint. Checked second.
#[rustfmt::skip]
const BY_STATUS: &[(Option<Endpoint>, u16, ErrorCode)] = &[
    (None, 401, ErrorCode::InvalidApiKey),
    (None, 413, ErrorCode::PayloadTooLarge),
    // The 409 text is undocumented: the contract says to match on the status.
    (Some(Endpoint::CreateRequest), 409, ErrorCode::ContactAlreadyUsed),
    // "It may also cover other refusals" (contract E5): any 400 on accept is a refusal.
    (Some(Endpoint::Accept), 400, ErrorCode::RequestNotAccepted),
    (Some(Endpoint::Accept), 404, ErrorCode::RequestNotFound),
    (Some(Endpoint::Show), 404, ErrorCode::RequestNotFound),
    (Some(Endpoint::Delete), 404, ErrorCode::RequestNotFound),
];

/// The `error` text of the gateway's JSON 403 for a call a kiosk certificate may not make
/// (`assets/deploy/gateway/ekyc-gateway.conf`).
pub const GATEWAY_FORBIDDEN: &str = "this kiosk certificate may not make this call";

/// The texts of nginx's own 400 pages for a client certificate it did not accept (`ssl_verify_client on`): none was
/// sent, or it failed verification (another CA, revoked, expired).
const NGINX_CERT_PAGES: [&str; 2] = ["No required SSL certificate was sent", "The SSL certificate error"];

/// A refusal by the bank's gateway, recognised before the vendor's routing: its certificate pages (400, HTML) and
/// its JSON 403. `None` for anything else.
pub(crate) fn gateway_refusal(endpoint: Endpoint, status: u16, body: &[u8], message: Option<&str>) -> Option<ApiError> {
    if status == 403 && message.map(str::trim) == Some(GATEWAY_FORBIDDEN) {
        return Some(ApiError::KioskNotAllowed { endpoint });
    }
    if status == 400 {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
        if let Some(page) = NGINX_CERT_PAGES.iter().find(|p| text.contains(*p)) {
            let reason = if *page == NGINX_CERT_PAGES[0] {
                "no client certificate was sent".to_string()
            } else {
                "the certificate failed verification (another CA, revoked or expired)".to_string()
            };
            return Some(ApiError::CertificateRefused { endpoint, status: Some(status), reason });
        }
    }
    None
}

/// Whether a status means the service is having trouble and the same request should be retried later.
pub(crate) fn is_server_trouble(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Routes an error answer: (endpoint, status, exact text) first, then (endpoint, status). `None` when the answer
/// is not documented. `message` is the `error` (or `message`) string of a JSON body, if there was one.
pub(crate) fn route(endpoint: Endpoint, status: u16, message: Option<&str>) -> Option<ErrorCode> {
    if let Some(text) = message.map(str::trim) {
        let exact = BY_TEXT.iter().find(|(e, s, t, _)| *e == endpoint && *s == status && *t == text);
        if let Some((.., code)) = exact {
            return Some(*code);
        }
    }
    BY_STATUS.iter().find(|(e, s, _)| e.is_none_or(|e| e == endpoint) && *s == status).map(|(.., code)| *code)
}

/// Whether an error answer (with this `error`/`message` text, if any) is documented: server trouble or a routed
/// error.
pub(crate) fn is_documented(endpoint: Endpoint, status: u16, message: Option<&str>) -> bool {
    is_server_trouble(status) || route(endpoint, status, message).is_some()
}

/// The typed error for an error answer (status 4xx, or any status not otherwise handled), routed by
/// [`route`]; an undocumented one becomes [`ApiError::UnexpectedResponse`] carrying `excerpt`.
pub(crate) fn from_answer(
    endpoint: Endpoint,
    status: u16,
    message: Option<&str>,
    retry_after: Option<Duration>,
    excerpt: Option<&str>,
) -> ApiError {
    if is_server_trouble(status) {
        return ApiError::ServerError { endpoint, status, retry_after };
    }
    match route(endpoint, status, message) {
        Some(code) => ApiError::documented(code, endpoint, status),
        None => {
            let detail = match excerpt {
                Some(x) if !x.is_empty() => format!("an undocumented answer: \"{x}\""),
                _ => "an undocumented answer".to_string(),
            };
            ApiError::UnexpectedResponse { endpoint, status: Some(status), detail }
        }
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date (a date in the past means no wait). Capped at
/// [`MAX_RETRY_AFTER`]. `None` for anything else.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a very long wait.
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let when = httpdate::parse_http_date(v).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A short, printable, single-line excerpt of an error answer for logs and [`ApiError::UnexpectedResponse`]:
/// every occurrence of `secret` (the API key, which a hostile server might echo) is replaced first, control and
/// non-ASCII characters become `?`, white space is collapsed, and the result is cut at `max` characters.
pub(crate) fn excerpt(bytes: &[u8], secret: &str, max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let scrubbed = if secret.is_empty() { text.into_owned() } else { text.replace(secret, "<redacted>") };
    let mut out = String::new();
    let mut last_space = true;
    let mut count = 0;
    for c in scrubbed.chars() {
        let c = if c.is_whitespace() {
            if last_space {
                continue;
            }
            ' '
        } else if c.is_ascii_graphic() {
            c
        } else {
            '?'
        };
        last_space = c == ' ';
        if count == max {
            out.push_str("...");
            return out;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::*;

    /// Every documented (endpoint, status, body) of the contract, and what it must become.
    #[rustfmt::skip]
    fn contract_table() -> Vec<(Endpoint, u16, &'static str, ErrorCode, ErrorClass)> {
        use Endpoint::*;
        use ErrorCode as C;
        let mut rows = vec![
            (Document, 400, r#"{"error": "invalid document (front, side, back) image provided"}"#, C::DocumentImageInvalid, CustomerMustAct),
            (Document, 400, r#"{"error": "invalid base64 front image provided"}"#, C::DocumentBase64Invalid, CustomerMustAct),
            (Document, 400, r#"{"error": "only one image is accepted per document side!"}"#, C::DocumentImageConflict, Fatal),
            (Document, 413, "Request Entity Too Large", C::PayloadTooLarge, CustomerMustAct),
            (Document, 400, r#"{"error": "The document supplied is not recognized!"}"#, C::DocumentNotRecognized, CustomerMustAct),
            (Face, 400, r#"{"error": "invalid face image provided"}"#, C::FaceImageInvalid, CustomerMustAct),
            (Face, 400, r#"{"error": "invalid base64 front image provided"}"#, C::FaceBase64Invalid, CustomerMustAct),
            (Face, 400, r#"{"error": "only one face image is accepted!"}"#, C::FaceImageConflict, Fatal),
            (Face, 413, "Request Entity Too Large", C::PayloadTooLarge, CustomerMustAct),
            (Face, 400, r#"{"error": "There is no document identification data with the provided id!"}"#, C::DocumentSessionNotFound, CustomerMustAct),
            (Face, 400, r#"{"error": "Face match verification FAILED!"}"#, C::FaceMismatch, CustomerMustAct),
            (Liveness, 400, r#"{"error": "invalid face video provided"}"#, C::LivenessVideoInvalid, CustomerMustAct),
            (Liveness, 400, r#"{"error": "invalid base64 video provided"}"#, C::LivenessBase64Invalid, CustomerMustAct),
            (Liveness, 400, r#"{"error": "only one face video is accepted!"}"#, C::LivenessVideoConflict, Fatal),
            (Liveness, 413, "Request Entity Too Large", C::PayloadTooLarge, CustomerMustAct),
            (Liveness, 400, r#"{"error": "There is no document identification data with the provided id!"}"#, C::DocumentSessionNotFound, CustomerMustAct),
            (Liveness, 400, r#"{"error": ":liveliness verification FAILED!"}"#, C::LivenessFailed, CustomerMustAct),
            (CreateRequest, 409, r#"{"error": "email already exists"}"#, C::ContactAlreadyUsed, CustomerMustAct),
            (CreateRequest, 409, "", C::ContactAlreadyUsed, CustomerMustAct),
            (CreateRequest, 400, r#"{"error": "There is no document identification data with the provided id!"}"#, C::DocumentSessionNotFound, CustomerMustAct),
            (Accept, 400, r#"{"message": "Kyc request not accepted"}"#, C::RequestNotAccepted, Fatal),
            (Show, 404, "<html>not found</html>", C::RequestNotFound, Fatal),
            (Delete, 404, r#"{"error": "not found"}"#, C::RequestNotFound, Fatal),
            // Routed by endpoint: the E1 text on E4 is not a document error.
            (CreateRequest, 400, r#"{"error": "invalid base64 front image provided"}"#, C::UnexpectedResponse, Fatal),
            // The face mismatch text on E1 is not documented there.
            (Document, 400, r#"{"error": "Face match verification FAILED!"}"#, C::UnexpectedResponse, Fatal),
            (Document, 400, r#"{"error": "something new"}"#, C::UnexpectedResponse, Fatal),
            (Face, 403, r#"{"error": "forbidden"}"#, C::UnexpectedResponse, Fatal),
            (List, 404, "", C::UnexpectedResponse, Fatal),
            (Document, 502, "<html><body>Bad Gateway</body></html>", C::ServerError, Transient),
            (Face, 503, "", C::ServerError, Transient),
            (CreateRequest, 500, r#"{"error": "internal"}"#, C::ServerError, Transient),
            (Accept, 429, "slow down", C::ServerError, Transient),
            (Show, 408, "", C::ServerError, Transient),
        ];
        // 401 on every endpoint, whatever the body (E4's stored text is cut off).
        for e in Endpoint::ALL {
            rows.push((e, 401, r#"{"error": "invalid api key"}"#, C::InvalidApiKey, Fatal));
            rows.push((e, 401, r#"{"error": "invalid api ke"}"#, C::InvalidApiKey, Fatal));
        }
        rows
    }

    fn message_of(body: &str) -> Option<String> {
        crate::api::wire::error_message(body.as_bytes())
    }

    #[test]
    fn routing_table_gives_the_right_variant_code_and_class() {
        for (endpoint, status, body, code, class) in contract_table() {
            let msg = message_of(body);
            let err = from_answer(endpoint, status, msg.as_deref(), None, None);
            assert_eq!(err.code(), code, "{endpoint} {status} {body}");
            assert_eq!(err.class(), class, "{endpoint} {status} {body}");
            assert_eq!(err.http_status(), Some(status), "{endpoint} {status} {body}");
            assert_eq!(err.endpoint(), Some(endpoint), "{endpoint} {status} {body}");
            assert_eq!(err.is_permanent(), matches!(class, CustomerMustAct | Fatal));
            assert!(!err.is_ambiguous());
        }
    }

    #[test]
    fn the_same_text_routes_by_endpoint() {
        let text = Some("invalid base64 front image provided");
        assert!(matches!(from_answer(Endpoint::Document, 400, text, None, None), ApiError::DocumentBase64Invalid));
        assert!(matches!(from_answer(Endpoint::Face, 400, text, None, None), ApiError::FaceBase64Invalid));
        let nodoc = Some(NO_DOCUMENT);
        for e in [Endpoint::Face, Endpoint::Liveness, Endpoint::CreateRequest] {
            let err = from_answer(e, 400, nodoc, None, None);
            assert!(matches!(err, ApiError::DocumentSessionNotFound { endpoint } if endpoint == e), "{e}");
        }
    }

    #[test]
    fn gateway_refusals_are_typed_and_a_vendor_403_is_not() {
        let page = |t: &str| {
            format!(
                "<html><head><title>400 {t}</title></head><body><center><h1>400 Bad Request</h1></center><center>{t}</center><hr><center>nginx</center></body></html>"
            )
        };
        for (t, why) in [("No required SSL certificate was sent", "no client"), ("The SSL certificate error", "failed")]
        {
            let err = gateway_refusal(Endpoint::Document, 400, page(t).as_bytes(), None).unwrap();
            assert_eq!((err.code(), err.class()), (ErrorCode::CertificateRefused, Transient), "{t}");
            assert!(err.to_string().contains(why), "{err}");
            assert_eq!(err.http_status(), Some(400));
        }
        let body = format!(r#"{{"error": "{GATEWAY_FORBIDDEN}"}}"#);
        let msg = message_of(&body);
        for e in [Endpoint::List, Endpoint::Show, Endpoint::Accept, Endpoint::Delete] {
            let err = gateway_refusal(e, 403, body.as_bytes(), msg.as_deref()).unwrap();
            assert_eq!((err.code(), err.class(), err.http_status()), (ErrorCode::KioskNotAllowed, Fatal, Some(403)));
        }
        // Another 403, or a vendor 400: not the gateway's.
        assert!(gateway_refusal(Endpoint::List, 403, br#"{"error": "forbidden"}"#, Some("forbidden")).is_none());
        assert!(gateway_refusal(Endpoint::Document, 400, b"{}", None).is_none());
    }

    #[test]
    fn server_trouble_keeps_retry_after() {
        let wait = Some(Duration::from_secs(7));
        let err = from_answer(Endpoint::Face, 503, None, wait, None);
        assert_eq!(err.retry_after(), wait);
        assert_eq!(err.class(), Transient);
        assert!(!err.is_permanent());
    }

    #[test]
    fn transport_classes_depend_on_whether_the_body_was_sent() {
        let cases = [
            (
                ApiError::Timeout { endpoint: Endpoint::Document, stage: "waiting for the answer", body_sent: true },
                Ambiguous,
            ),
            (
                ApiError::Timeout { endpoint: Endpoint::Document, stage: "while connecting", body_sent: false },
                Transient,
            ),
            (
                ApiError::NetworkUnreachable {
                    endpoint: Endpoint::CreateRequest,
                    reason: "reset".into(),
                    body_sent: true,
                },
                Ambiguous,
            ),
            (
                ApiError::NetworkUnreachable {
                    endpoint: Endpoint::CreateRequest,
                    reason: "refused".into(),
                    body_sent: false,
                },
                Transient,
            ),
            (ApiError::PayloadTooLarge { endpoint: Endpoint::Document, base64_len: Some(30_000_004) }, CustomerMustAct),
            (ApiError::Config { reason: "x".into() }, Fatal),
            // The kiosk's own stored image failed to read or decrypt: an operator must look, never the customer.
            (ApiError::ImageUnreadable { endpoint: Endpoint::Face, reason: "short".into() }, Fatal),
        ];
        for (err, class) in cases {
            assert_eq!(err.class(), class, "{err}");
            assert_eq!(err.is_ambiguous(), class == Ambiguous, "{err}");
            assert_eq!(err.http_status(), None, "{err}");
        }
        for endpoint in [Endpoint::Document, Endpoint::Face, Endpoint::Liveness] {
            let code = ApiError::ImageUnreadable { endpoint, reason: String::new() }.code();
            assert_eq!(code.as_str(), "stored_image_unreadable", "{endpoint}");
            assert_ne!(code.prompt().action, crate::api::RetryAction::RetakeDocument);
        }
    }

    #[test]
    fn displays_are_lower_case_and_name_the_endpoint() {
        let mut errs: Vec<ApiError> = contract_table()
            .into_iter()
            .map(|(e, s, b, ..)| from_answer(e, s, message_of(b).as_deref(), None, None))
            .collect();
        errs.push(ApiError::FaceMismatch { score: Some(0.41) });
        errs.push(ApiError::Config { reason: "api.base_url: x".into() });
        errs.push(ApiError::Timeout { endpoint: Endpoint::List, stage: "while connecting", body_sent: false });
        for err in errs {
            let s = err.to_string();
            let first = s.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{s}");
            if let Some(e) = err.endpoint() {
                assert!(s.starts_with(e.as_str()), "{s}");
            }
        }
    }

    #[test]
    fn retry_after_seconds_and_dates_are_parsed_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let in_90s = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let in_3h = httpdate::fmt_http_date(now + Duration::from_secs(3 * 3600));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(60));
        let table: Vec<(String, Option<Duration>)> = vec![
            ("120".into(), Some(Duration::from_secs(120))),
            (" 0 ".into(), Some(Duration::ZERO)),
            ("86400".into(), Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999".into(), Some(MAX_RETRY_AFTER)),
            (in_90s, Some(Duration::from_secs(90))),
            (in_3h, Some(MAX_RETRY_AFTER)),
            (past, Some(Duration::ZERO)),
            ("-5".into(), None),
            ("1.5".into(), None),
            ("soon".into(), None),
            ("".into(), None),
        ];
        for (value, want) in table {
            assert_eq!(parse_retry_after(&value, now), want, "{value:?}");
        }
    }

    #[test]
    fn excerpts_are_short_printable_and_scrubbed() {
        let key = "sk_live_SECRET_1234";
        let body = format!("<html>\n\n<body>bad\tkey {key} \u{1b}[31m é {}</body>", "x".repeat(500));
        let x = excerpt(body.as_bytes(), key, 60);
        assert!(!x.contains(key) && !x.contains("SECRET"), "{x}");
        assert!(x.contains("<redacted>"), "{x}");
        assert!(x.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{x}");
        assert!(x.len() <= 63, "{x}");
        assert!(!x.contains("  "), "{x}");
        assert_eq!(excerpt(b"short", key, 60), "short");
    }
}
