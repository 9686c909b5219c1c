//! The API client against a raw-TCP server on 127.0.0.1:0: exact request bytes (streamed bodies, headers, paths),
//! and hostile answers (HTML gateways, empty, oversized, truncated, wrong types, trickled, redirects, dropped
//! connections) that must end in the right typed error within the deadline, never leaking the API key.
//! Deadlines are short (1 to 2 s) so the whole file stays well under 20 s.

#[path = "support/raw_http.rs"]
mod raw_http;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ekyc_kiosk::api::{
    ApiClient, ApiConfig, ApiError, DocumentUpload, Endpoint, ErrorClass, ErrorCode, FaceMatchConfig, ImageBody,
    NewRequest,
};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::secret::ApiKey;
use raw_http::{Request, Server, json, read_head, read_request, response};
use serde_json::json as j;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const KEY: &str = "sk_test_LEAKCHECK_8c1f2b";

fn test_config() -> ApiConfig {
    ApiConfig {
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(1),
        upload_timeout: Duration::from_millis(1500),
        request_timeout: Duration::from_secs(1),
        max_response_bytes: 64 * 1024,
        ..ApiConfig::default()
    }
}

fn client_with(server: &Server, cfg: ApiConfig, face: FaceMatchConfig) -> ApiClient {
    ApiClient::new(&cfg, &face, server.url(), ApiKey::new(KEY)).expect("client")
}

fn client(server: &Server) -> ApiClient {
    client_with(server, test_config(), FaceMatchConfig::default())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8).collect()
}

fn new_request() -> NewRequest {
    NewRequest {
        email: Email::parse("ada@example.com").unwrap(),
        phone: Phone::parse("+251 999 678 350").unwrap(),
        document_id: "doc-1".into(),
    }
}

/// Records every request and answers with `answer`.
fn recording<F>(answer: F) -> (Server, Arc<Mutex<Vec<Request>>>)
where
    F: Fn(&Request) -> Vec<u8> + Send + Sync + 'static,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = Server::answering(move |req| {
        log.lock().unwrap().push(req.clone());
        answer(req)
    });
    (server, seen)
}

/// Asserts the key is in neither the Display nor the Debug of an error.
fn assert_no_key(err: &ApiError) {
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains(KEY) && !shown.contains("LEAKCHECK"), "key leaked: {shown}");
}

fn assert_within(started: Instant, limit: Duration, what: &str) {
    let took = started.elapsed();
    assert!(took <= limit, "{what} took {took:?}, over {limit:?}");
}

// ---------------------------------------------------------------------------------------------------------------
// What goes on the wire
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn streamed_uploads_are_byte_identical_json_with_exact_content_length() {
    let (server, seen) = recording(|_| json(200, r#"{"documentIdentificationId": "d-1", "result": {"age": 30}}"#));
    for prefix_on in [false, true] {
        let cfg = ApiConfig { data_uri_prefix: prefix_on, ..test_config() };
        let api = client_with(&server, cfg, FaceMatchConfig::default());
        for n in [0usize, 1, 2, 3, 4, 5, 3 * 1024 * 1024 + 1] {
            let front = pattern(n);
            let back = pattern(n / 3 + 2);
            let doc = DocumentUpload {
                front: ImageBody::from_bytes(&front),
                back: Some(ImageBody::from_reader(Box::new(io::Cursor::new(back.clone())), back.len() as u64)),
                side: None,
            };
            let got = api.upload_document(doc).expect("upload");
            assert_eq!(got.document_id, "d-1");
            assert_eq!(got.result["age"], 30);

            let req = seen.lock().unwrap().pop().expect("a request");
            assert_eq!(req.method, "POST");
            assert_eq!(req.target, "/api/document-authentication");
            assert_eq!(req.header("content-length"), Some(req.body.len().to_string().as_str()));
            assert_eq!(req.header("transfer-encoding"), None);
            assert_eq!(req.header("content-type"), Some("application/json"));
            assert_eq!(req.header("accept"), Some("application/json"));
            assert_eq!(req.header("x-api-key"), Some(KEY));
            let p = if prefix_on { "data:image/jpeg;base64," } else { "" };
            let want = j!({
                "frontImage_base64": format!("{p}{}", STANDARD.encode(&front)),
                "backImage_base64": format!("{p}{}", STANDARD.encode(&back)),
            });
            assert_eq!(req.json(), want, "size {n}, prefix {prefix_on}");
        }
    }
}

#[test]
fn every_endpoint_sends_its_method_path_and_body() {
    let request_item = r#"{"requests": [{"id": "r/1 x", "email": "ada@example.com", "phoneNumber": "251999678350",
        "isValidated": true, "isAccepted": false, "faceMatch": 0.91, "idInformation": {"firstName": "Ada"}}]}"#;
    let (server, seen) = recording(move |req| match (req.method.as_str(), req.target.split('?').next().unwrap()) {
        ("POST", "/api/face-authentication") => json(200, r#"{"success": true, "score": 0.908}"#),
        ("POST", "/api/liveness-verification") => json(200, r#"{"success": true}"#),
        ("POST", "/api/kyc-request") => json(201, r#"{"message": "Request submitted"}"#),
        ("PUT", "/api/accept") => json(200, r#"{"message": "Kyc request accepted"}"#),
        ("GET", "/api/requests") | ("GET", "/api/requests/r%2F1%20x") => json(200, request_item),
        ("DELETE", "/api/delete-request") => json(200, r#"{"message": "KYC request deleted!"}"#),
        _ => json(404, r#"{"error": "no route"}"#),
    });
    let cfg = ApiConfig { liveness_enabled: true, ..test_config() };
    let api = client_with(&server, cfg, FaceMatchConfig::default());
    let face = pattern(10);
    let clip = pattern(7);

    assert_eq!(api.match_face("doc-1", ImageBody::from_bytes(&face)).unwrap().score, 0.908);
    assert!(api.check_liveness("doc-1", ImageBody::from_bytes(&clip)).unwrap().passed);
    api.create_request(&new_request()).unwrap();
    api.accept_request("r/1 x").unwrap();
    let list = api.list_requests(false).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].face_match, Some(0.91));
    let one = api.get_request("r/1 x").unwrap();
    assert_eq!(one.id, "r/1 x");
    assert!(one.is_validated);
    api.list_requests(true).unwrap();
    api.delete_request("r/1 x").unwrap();

    let reqs = seen.lock().unwrap().clone();
    let expected: Vec<(&str, &str, Option<serde_json::Value>)> = vec![
        (
            "POST",
            "/api/face-authentication",
            Some(j!({"documentIdentificationId": "doc-1", "faceImage_base64": STANDARD.encode(&face)})),
        ),
        (
            "POST",
            "/api/liveness-verification",
            Some(j!({"documentIdentificationId": "doc-1",
            "faceVideo_base64": format!("data:video/x-msvideo;base64,{}", STANDARD.encode(&clip))})),
        ),
        (
            "POST",
            "/api/kyc-request",
            Some(j!({"email": "ada@example.com", "phoneNumber": "251999678350", "documentIdentificationId": "doc-1"})),
        ),
        ("PUT", "/api/accept", Some(j!({"id": "r/1 x"}))),
        ("GET", "/api/requests?accepted=false", None),
        ("GET", "/api/requests/r%2F1%20x", None),
        ("GET", "/api/requests?accepted=true", None),
        ("DELETE", "/api/delete-request", Some(j!({"id": "r/1 x"}))),
    ];
    assert_eq!(reqs.len(), expected.len());
    for (req, (method, target, body)) in reqs.iter().zip(expected) {
        assert_eq!((req.method.as_str(), req.target.as_str()), (method, target));
        assert_eq!(req.header("x-api-key"), Some(KEY), "{target}");
        assert_eq!(req.header("content-type"), Some("application/json"), "{target}");
        assert_eq!(req.header("accept"), Some("application/json"), "{target}");
        match body {
            Some(want) => {
                assert_eq!(req.json(), want, "{target}");
                assert_eq!(req.header("content-length"), Some(req.body.len().to_string().as_str()));
            }
            None => assert!(req.body.is_empty(), "{target}"),
        }
    }
}

#[test]
fn documented_error_answers_end_to_end() {
    // (endpoint to call, status, raw body, expected code, expected class)
    #[rustfmt::skip]
    let table: Vec<(Endpoint, u16, &str, ErrorCode, ErrorClass)> = vec![
        (Endpoint::Document, 400, r#"{"error": "invalid base64 front image provided"}"#, ErrorCode::DocumentBase64Invalid, ErrorClass::CustomerMustAct),
        (Endpoint::Document, 400, r#"{"error": "The document supplied is not recognized!"}"#, ErrorCode::DocumentNotRecognized, ErrorClass::CustomerMustAct),
        (Endpoint::Document, 413, "Request Entity Too Large", ErrorCode::PayloadTooLarge, ErrorClass::CustomerMustAct),
        (Endpoint::Face, 400, r#"{"error": "invalid base64 front image provided"}"#, ErrorCode::FaceBase64Invalid, ErrorClass::CustomerMustAct),
        (Endpoint::Face, 400, r#"{"error": "There is no document identification data with the provided id!"}"#, ErrorCode::DocumentSessionNotFound, ErrorClass::CustomerMustAct),
        (Endpoint::Face, 400, r#"{"error": "Face match verification FAILED!"}"#, ErrorCode::FaceMismatch, ErrorClass::CustomerMustAct),
        (Endpoint::Face, 401, r#"{"error": "invalid api key"}"#, ErrorCode::InvalidApiKey, ErrorClass::Fatal),
        (Endpoint::CreateRequest, 409, "", ErrorCode::ContactAlreadyUsed, ErrorClass::CustomerMustAct),
        (Endpoint::CreateRequest, 400, r#"{"error": "There is no document identification data with the provided id!"}"#, ErrorCode::DocumentSessionNotFound, ErrorClass::CustomerMustAct),
        (Endpoint::Accept, 400, r#"{"message": "Kyc request not accepted"}"#, ErrorCode::RequestNotAccepted, ErrorClass::Fatal),
        (Endpoint::Show, 404, "<html>Not Found</html>", ErrorCode::RequestNotFound, ErrorClass::Fatal),
        (Endpoint::Show, 200, r#"{"requests": []}"#, ErrorCode::RequestNotFound, ErrorClass::Fatal),
        (Endpoint::List, 418, r#"{"error": "I'm a teapot"}"#, ErrorCode::UnexpectedResponse, ErrorClass::Fatal),
    ];
    for (endpoint, status, body, code, class) in table {
        let raw = if body.starts_with('{') {
            json(status, body)
        } else {
            response(status, &[("Content-Type", "text/plain")], body.as_bytes())
        };
        let server = Server::answering(move |_| raw.clone());
        let err = call(&client(&server), endpoint).expect_err("an error");
        assert_eq!((err.code(), err.class()), (code, class), "{endpoint} {status} {body}: {err}");
        assert_eq!(err.http_status(), Some(status), "{err}");
        assert_eq!(err.endpoint(), Some(endpoint), "{err}");
    }
}

/// Calls `endpoint` with small valid inputs, discarding a success value.
fn call(api: &ApiClient, endpoint: Endpoint) -> Result<(), ApiError> {
    let img = pattern(30);
    match endpoint {
        Endpoint::Document => {
            api.upload_document(DocumentUpload { front: ImageBody::from_bytes(&img), back: None, side: None }).map(drop)
        }
        Endpoint::Face => api.match_face("doc-1", ImageBody::from_bytes(&img)).map(drop),
        Endpoint::Liveness => api.check_liveness("doc-1", ImageBody::from_bytes(&img)).map(drop),
        Endpoint::CreateRequest => api.create_request(&new_request()),
        Endpoint::Accept => api.accept_request("r1"),
        Endpoint::List => api.list_requests(false).map(drop),
        Endpoint::Show => api.get_request("r1").map(drop),
        Endpoint::Delete => api.delete_request("r1"),
        Endpoint::Health => api.check_connection().map(drop),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile answers
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn gateway_pages_are_server_errors_with_retry_after() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    // (raw answer, expected Retry-After range in seconds)
    type Case = (Vec<u8>, Option<(u64, u64)>);
    let cases: Vec<Case> = vec![
        (response(502, &[("Content-Type", "text/html")], b"<html><body><h1>502 Bad Gateway</h1></body></html>"), None),
        (response(503, &[("Retry-After", "17")], b""), Some((17, 17))),
        (response(503, &[("Retry-After", date.as_str())], b"<html>busy</html>"), Some((110, 120))),
        (response(429, &[("Retry-After", "999999")], b"slow down"), Some((3600, 3600))),
        (json(500, r#"{"error": "internal"}"#), None),
    ];
    for (raw, wait) in cases {
        let server = Server::answering(move |_| raw.clone());
        let err = call(&client(&server), Endpoint::Document).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ServerError, "{err}");
        assert_eq!(err.class(), ErrorClass::Transient, "{err}");
        match wait {
            None => assert_eq!(err.retry_after(), None),
            Some((lo, hi)) => {
                let got = err.retry_after().expect("retry-after").as_secs();
                assert!((lo..=hi).contains(&got), "retry-after {got} not in {lo}..={hi}");
            }
        }
    }
}

#[test]
fn malformed_success_bodies_are_unexpected_responses() {
    let cases: Vec<(Endpoint, Vec<u8>)> = vec![
        (Endpoint::Document, json(200, "")),
        (Endpoint::Document, response(200, &[("Content-Type", "text/html")], b"<html>portal login</html>")),
        (Endpoint::Document, json(200, r#"{"documentIdentificationId": "d-1", "result": {"na"#)),
        (Endpoint::Document, json(200, r#"{"documentIdentificationId": 12}"#)),
        (Endpoint::Face, json(200, r#"{"score": {"value": 0.9}}"#)),
        (Endpoint::Face, json(200, r#"{"score": 7}"#)),
        (Endpoint::Face, json(200, r#"{"success": true}"#)),
        (Endpoint::List, json(200, r#"{"requests": "none"}"#)),
        (Endpoint::List, json(200, r#"[]"#)),
    ];
    for (endpoint, raw) in cases {
        let server = Server::answering(move |_| raw.clone());
        let started = Instant::now();
        let err = call(&client(&server), endpoint).unwrap_err();
        assert_within(started, Duration::from_secs(2), "malformed body");
        assert_eq!(err.code(), ErrorCode::UnexpectedResponse, "{err}");
        assert_eq!(err.class(), ErrorClass::Fatal, "{err}");
        assert_eq!(err.http_status(), Some(200));
    }
}

#[test]
fn a_score_under_the_configured_minimum_is_a_mismatch() {
    let server = Server::answering(|_| json(200, r#"{"score": "0.41"}"#));
    let api = client_with(&server, test_config(), FaceMatchConfig { min_score: Some(0.8) });
    let err = api.match_face("doc-1", ImageBody::from_bytes(b"face")).unwrap_err();
    assert!(matches!(err, ApiError::FaceMismatch { score: Some(s) } if (s - 0.41).abs() < 1e-9), "{err:?}");
    assert_eq!(err.class(), ErrorClass::CustomerMustAct);
}

#[test]
fn an_announced_10_mb_body_is_refused_without_reading_it() {
    let server = Server::start(|mut s| {
        if read_request(&mut s).is_ok() {
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n");
            let _ = s.write_all(&vec![b' '; 10 * 1024 * 1024]);
        }
    });
    let started = Instant::now();
    let err = call(&client(&server), Endpoint::Face).unwrap_err();
    assert_within(started, Duration::from_secs(2), "10 MB body");
    assert_eq!(err.code(), ErrorCode::UnexpectedResponse, "{err}");
    assert!(err.to_string().contains("max_response_bytes"), "{err}");
}

#[test]
fn an_endless_body_is_cut_at_the_cap() {
    // No Content-Length: the body runs until the connection closes. The server writes until the client hangs up.
    let (tx, rx) = mpsc::channel();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let server = Server::start(move |mut s| {
        if read_request(&mut s).is_err() {
            return;
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[");
        let chunk = vec![b'1'; 256 * 1024];
        while w.load(Ordering::SeqCst) < 256 * 1024 * 1024 {
            if s.write_all(&chunk).is_err() {
                break;
            }
            w.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
        let _ = tx.send(());
    });
    let started = Instant::now();
    let err = call(&client(&server), Endpoint::List).unwrap_err();
    assert_within(started, Duration::from_secs(2), "endless body");
    assert_eq!(err.code(), ErrorCode::UnexpectedResponse, "{err}");
    rx.recv_timeout(Duration::from_secs(5)).expect("the server saw the client hang up");
    let total = written.load(Ordering::SeqCst);
    assert!(total < 32 * 1024 * 1024, "the client kept reading: {total} bytes written");
}

#[test]
fn a_body_cut_short_after_the_request_was_sent_is_ambiguous() {
    // Content-Length promises 100 bytes; 20 arrive, then the connection closes.
    let server = Server::start(|mut s| {
        if read_request(&mut s).is_ok() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"documentIdentificat");
        }
    });
    let err = call(&client(&server), Endpoint::Document).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{err}");
    assert!(err.is_ambiguous(), "{err}");
    // The same on a read: harmless to repeat, so transient, not ambiguous.
    let err = call(&client(&server), Endpoint::List).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
}

#[test]
fn a_trickled_answer_times_out_within_the_deadline() {
    // Headers at once, then one byte every 50 ms: longer than the 1 s overall deadline of a request.
    let trickle_body = Server::start(|mut s| {
        if read_request(&mut s).is_ok() {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n");
            for _ in 0..400 {
                std::thread::sleep(Duration::from_millis(50));
                if s.write_all(b" ").is_err() {
                    return;
                }
            }
        }
    });
    // The status line itself trickled: the response deadline applies.
    let trickle_head = Server::start(|mut s| {
        if read_request(&mut s).is_ok() {
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: ".iter().chain([b'a'; 400].iter()) {
                std::thread::sleep(Duration::from_millis(50));
                if s.write_all(&[*b]).is_err() {
                    return;
                }
            }
        }
    });
    for (server, endpoint, class) in [
        (&trickle_body, Endpoint::CreateRequest, ErrorClass::Ambiguous),
        (&trickle_body, Endpoint::List, ErrorClass::Transient),
        (&trickle_head, Endpoint::Accept, ErrorClass::Ambiguous),
        (&trickle_body, Endpoint::Face, ErrorClass::Ambiguous),
    ] {
        let started = Instant::now();
        let err = call(&client(server), endpoint).unwrap_err();
        assert_within(started, Duration::from_millis(2500), "trickle");
        assert_eq!(err.code(), ErrorCode::Timeout, "{endpoint}: {err}");
        assert_eq!(err.class(), class, "{endpoint}: {err}");
    }
}

#[test]
fn redirects_are_never_followed_and_the_target_never_sees_the_key() {
    let target = Server::silent();
    for status in [301u16, 302, 307, 308] {
        let location = format!("http://{}/api/steal?key={KEY}", target.addr());
        let server = Server::answering(move |_| response(status, &[("Location", location.as_str())], b""));
        for endpoint in [Endpoint::Document, Endpoint::List] {
            let err = call(&client(&server), endpoint).unwrap_err();
            assert_eq!(err.code(), ErrorCode::UnexpectedResponse, "{status}: {err}");
            assert_eq!(err.class(), ErrorClass::Fatal, "{status}: {err}");
            assert_eq!(err.http_status(), Some(status));
            assert_no_key(&err);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(target.connections(), 0, "the redirect target was contacted");
}

#[test]
fn connection_refused_is_network_unreachable_and_transient() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let api = ApiClient::new(&test_config(), &FaceMatchConfig::default(), url, ApiKey::new(KEY)).unwrap();
    for endpoint in [Endpoint::Document, Endpoint::CreateRequest, Endpoint::List] {
        let started = Instant::now();
        let err = call(&api, endpoint).unwrap_err();
        assert_within(started, Duration::from_secs(2), "refused");
        assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{err}");
        assert_eq!(err.class(), ErrorClass::Transient, "{err}");
        assert!(!err.is_permanent());
    }
}

#[test]
fn a_server_that_reads_everything_then_hangs_up_leaves_the_outcome_ambiguous() {
    let server = Server::start(|mut s| {
        let _ = read_request(&mut s);
        // Dropped without a word.
    });
    for endpoint in [Endpoint::Document, Endpoint::Face, Endpoint::CreateRequest, Endpoint::Delete] {
        let err = call(&client(&server), endpoint).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{endpoint}: {err}");
        assert!(err.is_ambiguous(), "{endpoint}: {err}");
        assert!(!err.is_permanent());
    }
}

#[test]
fn a_server_that_answers_nothing_after_the_body_times_out_ambiguously() {
    let server = Server::start(|mut s| {
        if read_request(&mut s).is_ok() {
            std::thread::sleep(Duration::from_secs(4));
        }
    });
    let started = Instant::now();
    let err = call(&client(&server), Endpoint::CreateRequest).unwrap_err();
    assert_within(started, Duration::from_secs(2), "silent after body");
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.is_ambiguous(), "{err}");
}

/// A 16 MB image (about 21 MB of base64): far more than loopback socket buffers hold.
fn big_image() -> ImageBody<'static> {
    let len = 16 * 1024 * 1024;
    ImageBody::from_reader(Box::new(io::repeat(0x5a).take(len)), len)
}

#[test]
fn a_server_that_never_reads_is_a_timeout_not_ambiguous() {
    let server = Server::start(|_s| std::thread::sleep(Duration::from_secs(4)));
    let api = client(&server);
    let started = Instant::now();
    let err = api.match_face("doc-1", big_image()).unwrap_err();
    assert_within(started, Duration::from_millis(2500), "never reads");
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
}

#[test]
fn a_server_that_hangs_up_mid_body_is_transient_not_ambiguous() {
    let server = Server::start(|mut s| {
        let _ = read_head(&mut s);
        let mut some = [0u8; 1024];
        let _ = s.read(&mut some);
    });
    let err = client(&server).match_face("doc-1", big_image()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{err}");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
}

#[test]
fn a_failing_image_source_is_reported_as_unreadable() {
    struct Corrupt(usize);
    impl Read for Corrupt {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "authentication tag mismatch"));
            }
            let n = out.len().min(self.0);
            out[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    let (server, seen) = recording(|_| json(200, r#"{"score": 0.9}"#));
    let err =
        client(&server).match_face("doc-1", ImageBody::from_reader(Box::new(Corrupt(100_000)), 200_000)).unwrap_err();
    assert!(matches!(err, ApiError::ImageUnreadable { .. }), "{err:?}");
    // The kiosk's own stored image failed: its fault, for an operator, never a retake prompt for the customer.
    assert_eq!(err.code(), ErrorCode::StoredImageUnreadable);
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert!(!err.is_ambiguous());
    std::thread::sleep(Duration::from_millis(50));
    assert!(seen.lock().unwrap().is_empty(), "a complete request reached the server");
}

#[test]
fn the_key_never_appears_in_errors_even_when_the_server_echoes_it() {
    let server = Server::answering(|req| {
        let key = req.header("x-api-key").unwrap_or_default().to_string();
        match req.target.as_str() {
            "/api/document-authentication" => json(418, &format!(r#"{{"error": "key {key} is odd"}}"#)),
            "/api/face-authentication" => {
                response(400, &[("Content-Type", "text/html")], format!("<b>{key}</b>").as_bytes())
            }
            "/api/kyc-request" => response(302, &[("Location", &format!("https://evil.example/?k={key}"))], b""),
            "/api/accept" => json(401, &format!(r#"{{"error": "invalid api key {key}"}}"#)),
            _ => json(200, &format!(r#"{{"requests": {key}}}"#)),
        }
    });
    let api = client(&server);
    for endpoint in [Endpoint::Document, Endpoint::Face, Endpoint::CreateRequest, Endpoint::Accept, Endpoint::List] {
        let err = call(&api, endpoint).unwrap_err();
        assert_no_key(&err);
    }
    // Undocumented answers keep a short excerpt for the operator, with the key scrubbed out.
    let err = call(&api, Endpoint::Document).unwrap_err();
    assert!(err.to_string().contains("<redacted>"), "{err}");
    // And errors that never saw an answer.
    let refused = ApiClient::new(
        &test_config(),
        &FaceMatchConfig::default(),
        "http://127.0.0.1:9".parse().unwrap(),
        ApiKey::new(KEY),
    )
    .unwrap();
    assert_no_key(&call(&refused, Endpoint::Face).unwrap_err());
    let err = ApiClient::new(
        &test_config(),
        &FaceMatchConfig::default(),
        "http://example.com".parse().unwrap(),
        ApiKey::new(KEY),
    )
    .unwrap_err();
    assert_no_key(&err);
}

#[test]
fn a_huge_undocumented_error_page_is_bounded_in_the_message() {
    let page = format!("<html>{}</html>", "lorem ipsum ".repeat(4000));
    let server = Server::answering(move |_| response(404, &[("Content-Type", "text/html")], page.as_bytes()));
    let err = call(&client(&server), Endpoint::Document).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnexpectedResponse);
    assert!(err.to_string().len() < 300, "{err}");
}

#[test]
fn find_request_looks_through_pending_then_accepted() {
    let (server, seen) = recording(|req| match req.target.as_str() {
        "/api/requests?accepted=false" => {
            json(200, r#"{"requests": [{"id": "p1", "email": "ada@example.com", "phoneNumber": "441234567890"}]}"#)
        }
        _ => json(200, r#"{"requests": [{"id": "a1", "email": "ADA@example.com", "phoneNumber": "+251999678350"}]}"#),
    });
    let api = client(&server);
    let want = new_request();
    let found = api.find_request(&want.email, &want.phone).unwrap().expect("found");
    assert_eq!(found.id, "a1");
    let targets: Vec<String> = seen.lock().unwrap().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/api/requests?accepted=false", "/api/requests?accepted=true"]);
    let nobody = Phone::parse("+44 20 7946 0958").unwrap();
    assert!(api.find_request(&want.email, &nobody).unwrap().is_none());
}

#[test]
fn an_answer_that_is_not_http_is_a_broken_exchange() {
    // Another service on the port, a malformed chunked body, a malformed Content-Length.
    let answers: [&[u8]; 3] = [
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}",
    ];
    for raw in answers {
        let raw = raw.to_vec();
        let server = Server::start(move |mut s| {
            if read_request(&mut s).is_ok() {
                let _ = s.write_all(&raw);
            }
        });
        // The request was complete when the garbage came: it may have been acted on.
        let err = call(&client(&server), Endpoint::CreateRequest).unwrap_err();
        assert_eq!((err.code(), err.class()), (ErrorCode::NetworkUnreachable, ErrorClass::Ambiguous), "{err}");
        let err = call(&client(&server), Endpoint::List).unwrap_err();
        assert_eq!((err.code(), err.class()), (ErrorCode::NetworkUnreachable, ErrorClass::Transient), "{err}");
    }
}
