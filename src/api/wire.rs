//! Wire types of the Lapis API: what the calls return ([`DocumentResult`], [`FaceResult`], [`LivenessResult`],
//! [`KycRequest`]), what E4 takes ([`NewRequest`]), and the defensive parsers for success and error bodies. Pure
//! functions, any thread.
//!
//! Success bodies carry OCR data and hosted image URLs, so a parse failure is described in our own words and never
//! quotes the body. Error bodies are read for their `error` key, else their `message` key (E5 uses `message`).

use crate::contact::{Email, Phone};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The longest document id accepted from the server (it is a UUID in every sample).
const MAX_DOCUMENT_ID_LEN: usize = 256;

/// The document sides to upload (E1). Only the front is required.
#[derive(Debug)]
pub struct DocumentUpload<'a> {
    /// Front of the ID document.
    pub front: super::ImageBody<'a>,
    /// Back of the ID document.
    pub back: Option<super::ImageBody<'a>>,
    /// The third ("side") image.
    pub side: Option<super::ImageBody<'a>>,
}

/// The answer to E1: the document id that links the later steps, and the server's extracted data.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentResult {
    /// `documentIdentificationId`: the opaque id for E2, E3 and E4.
    pub document_id: String,
    /// `result`: the extracted fields, kept whole (their keys depend on the document type); `Null` when absent.
    pub result: Value,
}

/// The answer to E2.
#[derive(Debug, Clone, Serialize)]
pub struct FaceResult {
    /// Similarity between the face and the document portrait, 0 to 1.
    pub score: f64,
}

/// The answer to E3.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessResult {
    /// Whether the liveness check passed (a failure is `ApiError::LivenessFailed`, so this is `true`).
    pub passed: bool,
}

/// What E4 submits.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The applicant's email address (validated).
    pub email: Email,
    /// The applicant's phone number with its country code (validated); sent in `api.phone_format`.
    pub phone: Phone,
    /// The id returned by E1.
    pub document_id: String,
}

/// One element of `requests[]` (E6/E7); every field lenient (missing or of the wrong type -> default), unknown keys
/// kept out. Read from the wire's camelCase names; serialised (for the CLI's JSON) with the snake_case names, which
/// it also reads back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KycRequest {
    /// `id`: the request id for E5, E7 and E9 (a number is kept as its decimal text).
    pub id: String,
    /// `email`.
    pub email: String,
    /// `phoneNumber`.
    pub phone_number: String,
    /// `isValidated`: the email OTP and phone call check passed.
    pub is_validated: bool,
    /// `isAccepted`: an operator approved it.
    pub is_accepted: bool,
    /// `faceMatch`: the E2 score.
    pub face_match: Option<f64>,
    /// `idInformation`: the OCR output, kept whole; `Null` when absent.
    pub id_information: Value,
    /// `idFrontImage`: hosted copy (URL).
    pub id_front_image: Option<String>,
    /// `idBackImage`: hosted copy (URL).
    pub id_back_image: Option<String>,
    /// `idSideImage`: hosted copy (URL).
    pub id_side_image: Option<String>,
    /// `faceImage`: hosted copy (URL).
    pub face_image: Option<String>,
    /// `documentIdentificationId`: the document the request was created from, when the API says (the contract's
    /// request object does not promise it).
    pub document_id: Option<String>,
}

impl KycRequest {
    /// Reads one request object leniently. `None` when the value is not an object.
    pub fn from_value(v: &Value) -> Option<KycRequest> {
        let obj = v.as_object()?;
        let get = |camel: &str, snake: &str| obj.get(camel).or_else(|| obj.get(snake));
        let text = |camel: &str, snake: &str| get(camel, snake).and_then(lenient_string);
        let flag = |camel: &str, snake: &str| get(camel, snake).and_then(lenient_bool).unwrap_or(false);
        Some(KycRequest {
            id: text("id", "id").unwrap_or_default(),
            email: text("email", "email").unwrap_or_default(),
            phone_number: text("phoneNumber", "phone_number").unwrap_or_default(),
            is_validated: flag("isValidated", "is_validated"),
            is_accepted: flag("isAccepted", "is_accepted"),
            face_match: get("faceMatch", "face_match").and_then(lenient_number),
            id_information: get("idInformation", "id_information")
                .filter(|v| v.is_object())
                .cloned()
                .unwrap_or(Value::Null),
            id_front_image: get("idFrontImage", "id_front_image").and_then(Value::as_str).map(str::to_owned),
            id_back_image: get("idBackImage", "id_back_image").and_then(Value::as_str).map(str::to_owned),
            id_side_image: get("idSideImage", "id_side_image").and_then(Value::as_str).map(str::to_owned),
            face_image: get("faceImage", "face_image").and_then(Value::as_str).map(str::to_owned),
            document_id: text("documentIdentificationId", "document_id").filter(|d| !d.is_empty()),
        })
    }
}

impl KycRequest {
    /// Whether this request carries both this email (compared without case) and this phone number (compared on its
    /// digits, so `+251...` and `251...` are the same number).
    pub fn has_contact(&self, email: &Email, phone: &Phone) -> bool {
        let digits: String = self.phone_number.chars().filter(char::is_ascii_digit).collect();
        self.email.trim().eq_ignore_ascii_case(email.as_str()) && digits == phone.digits()
    }
}

impl<'de> Deserialize<'de> for KycRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        KycRequest::from_value(&v).ok_or_else(|| serde::de::Error::custom("a request must be a JSON object"))
    }
}

/// A string, or a number as its decimal text.
fn lenient_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A finite number, or a string holding one.
fn lenient_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// The body as a JSON object, or why not (in our words: never quoting a success body).
fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the body is empty".into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the body is json but not an object".into()),
        Err(e) if e.is_eof() => Err("the body is truncated json".into()),
        Err(_) => Err("the body is not json".into()),
    }
}

/// E1's success body: `documentIdentificationId` (a non-empty string) is required; `result` is kept if it is an
/// object.
pub(crate) fn parse_document(body: &[u8]) -> Result<DocumentResult, String> {
    let obj = object(body)?;
    let id = match obj.get("documentIdentificationId") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) => return Err("`documentIdentificationId` is empty".into()),
        Some(_) => return Err("`documentIdentificationId` is not a string".into()),
        None => return Err("`documentIdentificationId` is missing".into()),
    };
    if id.len() > MAX_DOCUMENT_ID_LEN || id.chars().any(char::is_control) {
        return Err("`documentIdentificationId` is not a plausible id".into());
    }
    let result = obj.get("result").filter(|v| v.is_object()).cloned().unwrap_or(Value::Null);
    Ok(DocumentResult { document_id: id, result })
}

/// E2's success body: `score`, a number from 0 to 1 (a string holding one is accepted).
pub(crate) fn parse_face(body: &[u8]) -> Result<f64, String> {
    let obj = object(body)?;
    let score = match obj.get("score") {
        None => return Err("`score` is missing".into()),
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            lenient_number(v).ok_or_else(|| "`score` is not a number".to_string())?
        }
        Some(_) => return Err("`score` is not a number".into()),
    };
    if !(0.0..=1.0).contains(&score) {
        return Err(format!("`score` {score} is not between 0 and 1"));
    }
    Ok(score)
}

/// E3's success body (undocumented): any 2xx passes, unless it says `"success": false` or `"passed": false`.
/// An empty or non-JSON body is accepted: the status is the documented signal.
pub(crate) fn parse_liveness(body: &[u8]) -> bool {
    let Ok(obj) = object(body) else { return true };
    !["success", "passed"].iter().any(|k| obj.get(*k) == Some(&Value::Bool(false)))
}

/// E6/E7's success body: `{"requests": [...]}`, each element an object.
pub(crate) fn parse_requests(body: &[u8]) -> Result<Vec<KycRequest>, String> {
    let obj = object(body)?;
    let items = match obj.get("requests") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err("`requests` is not an array".into()),
        None => return Err("`requests` is missing".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| KycRequest::from_value(v).ok_or_else(|| format!("`requests[{i}]` is not an object")))
        .collect()
}

/// The error text of an error body: its `error` string, else its `message` string. `None` for a body that is not
/// a JSON object (plain text 413, HTML from a proxy, empty) or has neither key as a string.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let obj = object(body).ok()?;
    ["error", "message"].iter().find_map(|k| obj.get(*k).and_then(Value::as_str).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_bodies() {
        let ok = parse_document(br#"{"success": true, "documentIdentificationId": "abc-1", "result": {"age": 30}}"#)
            .unwrap();
        assert_eq!(ok.document_id, "abc-1");
        assert_eq!(ok.result["age"], 30);
        let no_result = parse_document(br#"{"documentIdentificationId": "abc"}"#).unwrap();
        assert_eq!(no_result.result, Value::Null);
        let table: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"<html>502</html>", "not json"),
            (br#"{"documentIdentificationId": "ab"#, "truncated"),
            (b"[1,2]", "not an object"),
            (br#"{"result": {}}"#, "missing"),
            (br#"{"documentIdentificationId": 42}"#, "not a string"),
            (br#"{"documentIdentificationId": "  "}"#, "empty"),
        ];
        for (body, want) in table {
            let err = parse_document(body).unwrap_err();
            assert!(err.contains(want), "{:?}: {err}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn face_bodies() {
        assert_eq!(parse_face(br#"{"score": 0.908}"#).unwrap(), 0.908);
        assert_eq!(parse_face(br#"{"score": 1}"#).unwrap(), 1.0);
        assert_eq!(parse_face(br#"{"score": "0.5"}"#).unwrap(), 0.5);
        for body in [
            &br#"{"score": {"value": 0.9}}"#[..],
            br#"{"score": "high"}"#,
            br#"{"score": 1.5}"#,
            br#"{"score": -0.1}"#,
            br#"{"score": null}"#,
            br#"{"score": true}"#,
            br#"{}"#,
            b"",
        ] {
            assert!(parse_face(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn error_messages_read_error_then_message() {
        let table: &[(&[u8], Option<&str>)] = &[
            (br#"{"error": "invalid api key"}"#, Some("invalid api key")),
            (br#"{"message": "Kyc request not accepted"}"#, Some("Kyc request not accepted")),
            (br#"{"error": "a", "message": "b"}"#, Some("a")),
            (br#"{"error": {"code": 1}, "message": "b"}"#, Some("b")),
            (br#"{"error": 5}"#, None),
            (b"Request Entity Too Large", None),
            (b"<html><h1>502 Bad Gateway</h1></html>", None),
            (b"", None),
            (br#"{"error": "trunc"#, None),
        ];
        for (body, want) in table {
            assert_eq!(error_message(body).as_deref(), *want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn requests_are_lenient_per_field_and_round_trip() {
        let body = br#"{"requests": [
            {"id": "r1", "email": "a@b.co", "phoneNumber": "251999678350", "isValidated": true, "isAccepted": false,
             "faceMatch": 0.908, "idInformation": {"firstName": "A"}, "idFrontImage": "https://x/f.jpg",
             "faceImage": "https://x/face.jpg", "unknown": 1},
            {"id": 674, "faceMatch": "0.5", "isValidated": "true", "idInformation": "oops", "email": null},
            {}
        ]}"#;
        let reqs = parse_requests(body).unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0].id, "r1");
        assert_eq!(reqs[0].phone_number, "251999678350");
        assert!(reqs[0].is_validated && !reqs[0].is_accepted);
        assert_eq!(reqs[0].face_match, Some(0.908));
        assert_eq!(reqs[0].id_information["firstName"], "A");
        assert_eq!(reqs[0].id_front_image.as_deref(), Some("https://x/f.jpg"));
        assert_eq!(reqs[0].id_back_image, None);
        assert_eq!(reqs[1].id, "674");
        assert_eq!(reqs[1].face_match, Some(0.5));
        assert!(reqs[1].is_validated);
        assert_eq!(reqs[1].id_information, Value::Null);
        assert_eq!(reqs[1].email, "");
        assert_eq!(reqs[2], KycRequest::default());
        // The CLI prints snake_case and can read it back.
        let json = serde_json::to_string(&reqs[0]).unwrap();
        assert!(json.contains("\"phone_number\""), "{json}");
        let back: KycRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reqs[0]);
    }

    #[test]
    fn contact_matching_needs_both_email_and_phone() {
        let req = KycRequest {
            email: "Ada@Example.com".into(),
            phone_number: "+251 999678350".into(),
            ..KycRequest::default()
        };
        let email = Email::parse("ada@example.com").unwrap();
        let other_email = Email::parse("bob@example.com").unwrap();
        let phone = Phone::parse("251999678350").unwrap();
        let other_phone = Phone::parse("+44 20 7946 0958").unwrap();
        assert!(req.has_contact(&email, &phone));
        assert!(!req.has_contact(&other_email, &phone));
        assert!(!req.has_contact(&email, &other_phone));
    }

    #[test]
    fn malformed_request_lists_are_refused() {
        for (body, want) in [
            (&br#"{"requests": {"id": "r1"}}"#[..], "not an array"),
            (br#"{"request": []}"#, "missing"),
            (br#"{"requests": [1]}"#, "requests[0]"),
            (br#"{"requests": [{"id": "a"}, "b"]}"#, "requests[1]"),
        ] {
            let err = parse_requests(body).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        assert!(parse_requests(br#"{"requests": []}"#).unwrap().is_empty());
    }

    #[test]
    fn liveness_bodies() {
        assert!(parse_liveness(b""));
        assert!(parse_liveness(br#"{"success": true}"#));
        assert!(!parse_liveness(br#"{"success": false}"#));
        assert!(!parse_liveness(br#"{"passed": false}"#));
    }
}
