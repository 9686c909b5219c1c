//! The stable error codes and the one table that turns each into a customer prompt, a retry action and an operator
//! explanation. Pure data: no I/O, used from any thread (the CLI's JSON, the logs, the uploader, and the UI's retry
//! prompts all read this table).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable snake_case error code. These strings are an interface (CLI JSON, logs, the UI, the queue's database):
/// never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401 on any endpoint: the API key is missing, wrong or revoked.
    InvalidApiKey,
    /// E1 400: an image URL could not be fetched or is not an image.
    DocumentImageInvalid,
    /// E1 400: the base64 did not decode to PNG or JPEG.
    DocumentBase64Invalid,
    /// E1 400: a URL and base64 were both sent for one side.
    DocumentImageConflict,
    /// E1 400: the document is unreadable, unsupported or failed the authenticity check.
    DocumentNotRecognized,
    /// 413 on an upload: the base64 body is over the 30 MB limit.
    PayloadTooLarge,
    /// E2 400: the face URL could not be fetched or is not an image.
    FaceImageInvalid,
    /// E2 400: the face base64 did not decode to PNG or JPEG.
    FaceBase64Invalid,
    /// E2 400: a URL and base64 were both sent for the face.
    FaceImageConflict,
    /// E2/E3/E4 400: the document id is unknown or expired.
    DocumentSessionNotFound,
    /// E2 400 (or a score under the configured minimum): the face does not match the document portrait.
    FaceMismatch,
    /// E3 400: the video URL could not be fetched or is not valid.
    LivenessVideoInvalid,
    /// E3 400: the base64 video is not valid.
    LivenessBase64Invalid,
    /// E3 400: a URL and base64 were both sent for the video.
    LivenessVideoConflict,
    /// E3 400: the liveness test failed.
    LivenessFailed,
    /// E4 409: the email or phone number already belongs to a request.
    ContactAlreadyUsed,
    /// E5 400: the request could not be accepted (unknown id or wrong state).
    RequestNotAccepted,
    /// E7/E9: no request has that id.
    RequestNotFound,
    /// The server could not be reached (DNS, refused, reset before the request was sent).
    NetworkUnreachable,
    /// A 5xx, 408 or 429 answer, or a gateway page: the service is having trouble.
    ServerError,
    /// A deadline passed while connecting, sending or waiting for the answer.
    Timeout,
    /// An answer the contract does not describe (unknown 4xx, malformed success body, a redirect).
    UnexpectedResponse,
    /// The kiosk could not read or decrypt an image it had stored for sending: the kiosk's fault, never the
    /// customer's (an operator alert).
    StoredImageUnreadable,
    /// The TLS handshake with the API failed (unknown CA, expired certificate, wrong host): sending pauses with an
    /// operator alert.
    TlsFailure,
    /// The bank's gateway refused this kiosk's certificate (none sent, another CA's, revoked or expired): sending
    /// pauses with an operator alert until the certificate is fixed; nothing is marked for the customer.
    CertificateRefused,
    /// The bank's gateway answered 403: this kiosk's certificate may not make that call (listing, showing,
    /// accepting or deleting requests is the back office's job).
    KioskNotAllowed,
}

/// What fixes an error, from the customer's side of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAction {
    /// Take the face photo again.
    RetakeFace,
    /// Take the document photos again.
    RetakeDocument,
    /// Enter a different email address or phone number.
    EditContact,
    /// Start the application from the beginning.
    StartAgain,
    /// Nothing the customer can do: a member of staff must help.
    AskStaff,
    /// Nothing to do: the kiosk keeps the application and retries by itself.
    Wait,
}

/// How an error is handled by the machine (the uploader, the CLI's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The customer must act (retake, change contact details); retrying the same input will not help.
    CustomerMustAct,
    /// Retry the same input later, with backoff.
    Transient,
    /// Configuration or programming defect; an operator must act. Retrying will not help.
    Fatal,
    /// The body was sent but no answer came: the server may have processed it. Retried, and counted.
    Ambiguous,
}

/// One row of the prompt table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompt {
    /// The code this row describes.
    pub code: ErrorCode,
    /// Short customer-facing title, plain words.
    pub title: &'static str,
    /// Customer-facing message: what happened and what to do, no status codes or vendor wording.
    pub message: &'static str,
    /// The retry action offered on screen.
    pub action: RetryAction,
    /// The class used when the error carries no more specific information.
    pub class: ErrorClass,
    /// Operator-facing explanation: the wire-level cause and where to look.
    pub operator: &'static str,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 26] = [
        ErrorCode::InvalidApiKey,
        ErrorCode::DocumentImageInvalid,
        ErrorCode::DocumentBase64Invalid,
        ErrorCode::DocumentImageConflict,
        ErrorCode::DocumentNotRecognized,
        ErrorCode::PayloadTooLarge,
        ErrorCode::FaceImageInvalid,
        ErrorCode::FaceBase64Invalid,
        ErrorCode::FaceImageConflict,
        ErrorCode::DocumentSessionNotFound,
        ErrorCode::FaceMismatch,
        ErrorCode::LivenessVideoInvalid,
        ErrorCode::LivenessBase64Invalid,
        ErrorCode::LivenessVideoConflict,
        ErrorCode::LivenessFailed,
        ErrorCode::ContactAlreadyUsed,
        ErrorCode::RequestNotAccepted,
        ErrorCode::RequestNotFound,
        ErrorCode::NetworkUnreachable,
        ErrorCode::ServerError,
        ErrorCode::Timeout,
        ErrorCode::UnexpectedResponse,
        ErrorCode::StoredImageUnreadable,
        ErrorCode::TlsFailure,
        ErrorCode::CertificateRefused,
        ErrorCode::KioskNotAllowed,
    ];

    /// The stable snake_case string.
    pub fn as_str(self) -> &'static str {
        self.prompt_row().0
    }

    /// Parses a stable code string (as stored in the queue or printed by the CLI).
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The prompt table row for this code.
    pub fn prompt(self) -> Prompt {
        let (_, title, message, action, class, operator) = self.prompt_row();
        Prompt { code: self, title, message, action, class, operator }
    }

    #[rustfmt::skip]
    fn prompt_row(self) -> (&'static str, &'static str, &'static str, RetryAction, ErrorClass, &'static str) {
        use ErrorClass::*;
        use RetryAction::*;
        match self {
            ErrorCode::InvalidApiKey => ("invalid_api_key",
                "This kiosk needs attention",
                "We can't send applications right now. A member of staff will help you. Nothing you entered has been lost.",
                AskStaff, Fatal,
                "The API answered 401 \"invalid api key\": the key in api.key_file or EKYC_API_KEY is missing, wrong or revoked. The upload queue pauses until the key is fixed; queued applications are kept."),
            ErrorCode::DocumentImageInvalid => ("document_image_invalid",
                "We couldn't read your document photo",
                "Please take the photos of your ID document again.",
                RetakeDocument, CustomerMustAct,
                "E1 answered 400 \"invalid document (front, side, back) image provided\": the server could not fetch or read an image URL. The kiosk sends base64 only, so check api.fields.* against the live API."),
            ErrorCode::DocumentBase64Invalid => ("document_base64_invalid",
                "Your document photo didn't come through",
                "Please take the photos of your ID document again.",
                RetakeDocument, CustomerMustAct,
                "E1 answered 400 \"invalid base64 front image provided\": the server did not decode an image as PNG or JPEG. If it recurs, suspect the encoder or api.data_uri_prefix."),
            ErrorCode::DocumentImageConflict => ("document_image_conflict",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "E1 answered 400 \"only one image is accepted per document side!\": a URL and base64 were both sent for one side. This is a client defect or a misconfigured field name in api.fields.*."),
            ErrorCode::DocumentNotRecognized => ("document_not_recognized",
                "We couldn't recognise your document",
                "Place the whole card flat inside the frame, avoid glare, and we'll take the photos again. You can also use a different ID document.",
                RetakeDocument, CustomerMustAct,
                "E1 answered 400 \"The document supplied is not recognized!\": unreadable, unsupported or failed the authenticity check."),
            ErrorCode::PayloadTooLarge => ("payload_too_large",
                "Your photos are too large to send",
                "Please take the photos again.",
                StartAgain, CustomerMustAct,
                "An upload was answered 413 \"Request Entity Too Large\" (plain text). The kiosk re-encodes once at a smaller budget before reporting this; lower encode.max_bytes if it recurs."),
            ErrorCode::FaceImageInvalid => ("face_image_invalid",
                "We couldn't read your photo",
                "Please look at the camera and we'll take your photo again.",
                RetakeFace, CustomerMustAct,
                "E2 answered 400 \"invalid face image provided\": the server could not fetch or read the face image URL. The kiosk sends base64 only, so check api.fields.face."),
            ErrorCode::FaceBase64Invalid => ("face_base64_invalid",
                "Your photo didn't come through",
                "Please look at the camera and we'll take your photo again.",
                RetakeFace, CustomerMustAct,
                "E2 answered 400 \"invalid base64 front image provided\" (the same text as E1, routed by endpoint): the face image did not decode as PNG or JPEG."),
            ErrorCode::FaceImageConflict => ("face_image_conflict",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "E2 answered 400 \"only one face image is accepted!\": a URL and base64 were both sent. This is a client defect or a misconfigured api.fields.face."),
            ErrorCode::DocumentSessionNotFound => ("document_session_not_found",
                "Please scan your document again",
                "Your document scan has expired. We'll take the photos of your ID document again.",
                RetakeDocument, CustomerMustAct,
                "The server answered 400 \"There is no document identification data with the provided id!\": the document id is unknown or expired. The flow restarts from the document upload."),
            ErrorCode::FaceMismatch => ("face_mismatch",
                "Your photo didn't match your document",
                "Take off glasses or a hat, face the camera in good light, and we'll take your photo again.",
                RetakeFace, CustomerMustAct,
                "E2 answered 400 \"Face match verification FAILED!\" (or a 200 with a score under face_match.min_score). After the configured number of attempts the case goes to manual review."),
            ErrorCode::LivenessVideoInvalid => ("liveness_video_invalid",
                "We couldn't use your video",
                "Please look at the camera and we'll record a short clip again.",
                RetakeFace, CustomerMustAct,
                "E3 answered 400 \"invalid face video provided\": the video URL could not be fetched or is not valid."),
            ErrorCode::LivenessBase64Invalid => ("liveness_base64_invalid",
                "Your video didn't come through",
                "Please look at the camera and we'll record a short clip again.",
                RetakeFace, CustomerMustAct,
                "E3 answered 400 \"invalid base64 video provided\": the clip did not decode. Check api.liveness data-URI prefix and the clip encoder."),
            ErrorCode::LivenessVideoConflict => ("liveness_video_conflict",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "E3 answered 400 \"only one face video is accepted!\": a URL and base64 were both sent. This is a client defect or a misconfigured api.fields.liveness."),
            ErrorCode::LivenessFailed => ("liveness_failed",
                "We couldn't confirm it's you",
                "Look at the camera, move your head slightly, and we'll record a short clip again.",
                RetakeFace, CustomerMustAct,
                "E3 answered 400 \":liveliness verification FAILED!\". After the configured number of attempts the case goes to manual review."),
            ErrorCode::ContactAlreadyUsed => ("contact_already_used",
                "This email or phone number is already in use",
                "Please enter a different email address or phone number, or ask a member of staff.",
                EditContact, CustomerMustAct,
                "E4 answered 409: the email or phone number already belongs to a request under this API key. After an ambiguous attempt the kiosk checks the request list first; otherwise the customer changes details or an operator deletes the old request."),
            ErrorCode::RequestNotAccepted => ("request_not_accepted",
                "This request couldn't be approved",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "E5 answered 400 with the message \"Kyc request not accepted\": no request has that id, or it is not in a state that can be accepted."),
            ErrorCode::RequestNotFound => ("request_not_found",
                "We couldn't find this request",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "E7/E9 found no request with that id (404, or an empty list)."),
            ErrorCode::NetworkUnreachable => ("network_unreachable",
                "No connection right now",
                "Your application is saved on this kiosk and will be sent as soon as the connection is back.",
                Wait, Transient,
                "The API host could not be reached (DNS failure, connection refused or reset before the request was sent). Retried automatically with backoff."),
            ErrorCode::ServerError => ("server_error",
                "The service is busy",
                "Your application is saved on this kiosk and will be sent automatically in a moment.",
                Wait, Transient,
                "The API answered 5xx, 408 or 429, or a gateway sent a non-JSON error page. Retried automatically with backoff, honouring Retry-After."),
            ErrorCode::Timeout => ("timeout",
                "The connection is slow",
                "Your application is saved on this kiosk and will be sent automatically.",
                Wait, Transient,
                "A deadline passed (api.connect_timeout, api.response_timeout or the call's overall limit). If the body had been sent, the attempt is ambiguous: it is retried and counted."),
            ErrorCode::UnexpectedResponse => ("unexpected_response",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "The API answered in a way the contract does not describe (an unknown 4xx, a malformed or oversized body, a redirect). See the log line with this code for the status and a safe excerpt."),
            ErrorCode::StoredImageUnreadable => ("stored_image_unreadable",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "The kiosk could not read or decrypt an image it had stored for this application (damaged queue database or disk). This is the kiosk's fault, not the customer's: the application is marked failed and kept. Check the disk and `queue status`, then `queue retry` it or take the application again."),
            ErrorCode::TlsFailure => ("tls_failure",
                "No connection right now",
                "Your application is saved on this kiosk and will be sent as soon as the connection is back.",
                Wait, Transient,
                "The TLS handshake with the API failed: its certificate is from a CA this kiosk does not trust, has expired (check the system clock), or is for another host (check api.base_url), or a proxy intercepts TLS. Retrying alone will not fix it: sending pauses with an operator alert and is tried again every uploader.key_probe_interval; queued applications are kept."),
            ErrorCode::CertificateRefused => ("certificate_refused",
                "No connection right now",
                "Your application is saved on this kiosk and will be sent as soon as the connection is back.",
                Wait, Transient,
                "The bank's gateway refused this kiosk's certificate: none was sent (check api.client_cert_file and api.client_key_file), it is not issued by the kiosk CA, or it is revoked or expired (enrol the kiosk again). Sending pauses with an operator alert and is tried again every uploader.key_probe_interval; a renewed certificate file is picked up without a restart and queued applications are kept."),
            ErrorCode::KioskNotAllowed => ("kiosk_not_allowed",
                "Something went wrong on our side",
                "Please ask a member of staff for help.",
                AskStaff, Fatal,
                "The bank's gateway answered 403: a kiosk's certificate may only send applications (document, face, liveness and create request). Requests are listed, accepted and deleted from the back office with an operator credential. After an unanswered create request and a 409 the kiosk cannot look the request up itself: the application is marked failed; check in the back office whether its request exists."),
        }
    }
}

/// The prompt table as Markdown (the README carries it verbatim; a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| code | the customer sees | action | handling | operator explanation |\n|---|---|---|---|---|\n",
    );
    for c in ErrorCode::ALL {
        let p = c.prompt();
        out.push_str(&format!(
            "| `{}` | **{}** {} | `{}` | {} | {} |\n",
            c.as_str(),
            p.title,
            p.message,
            p.action.as_str(),
            p.class.as_str().replace('_', " "),
            p.operator.replace('|', "\\|")
        ));
    }
    out
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RetryAction {
    /// The stable snake_case string (CLI JSON, UI).
    pub fn as_str(self) -> &'static str {
        match self {
            RetryAction::RetakeFace => "retake_face",
            RetryAction::RetakeDocument => "retake_document",
            RetryAction::EditContact => "edit_contact",
            RetryAction::StartAgain => "start_again",
            RetryAction::AskStaff => "ask_staff",
            RetryAction::Wait => "wait",
        }
    }
}

impl ErrorClass {
    /// The stable snake_case string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::CustomerMustAct => "customer_must_act",
            ErrorClass::Transient => "transient",
            ErrorClass::Fatal => "fatal",
            ErrorClass::Ambiguous => "ambiguous",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_strings_and_round_trip() {
        let expected = [
            "invalid_api_key",
            "document_image_invalid",
            "document_base64_invalid",
            "document_image_conflict",
            "document_not_recognized",
            "payload_too_large",
            "face_image_invalid",
            "face_base64_invalid",
            "face_image_conflict",
            "document_session_not_found",
            "face_mismatch",
            "liveness_video_invalid",
            "liveness_base64_invalid",
            "liveness_video_conflict",
            "liveness_failed",
            "contact_already_used",
            "request_not_accepted",
            "request_not_found",
            "network_unreachable",
            "server_error",
            "timeout",
            "unexpected_response",
            "stored_image_unreadable",
            "tls_failure",
            "certificate_refused",
            "kiosk_not_allowed",
        ];
        let got: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(got, expected);
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn customer_text_has_no_status_codes_or_vendor_wording() {
        for c in ErrorCode::ALL {
            let p = c.prompt();
            let text = format!("{} {}", p.title, p.message);
            for banned in ["400", "401", "409", "413", "500", "API", "base64", "FAILED", "http", "error"] {
                assert!(!text.contains(banned), "{c}: customer text contains {banned:?}: {text}");
            }
            assert!(!p.operator.is_empty());
            assert!(p.title.len() <= 60, "{c}: title too long for a prompt");
        }
    }

    #[test]
    fn wait_action_goes_with_transient_class() {
        for c in ErrorCode::ALL {
            let p = c.prompt();
            assert_eq!(p.action == RetryAction::Wait, p.class == ErrorClass::Transient, "{c}");
        }
    }
}
