//! The sandbox's endpoints over real HTTP: the happy path, and every documented error byte for byte (status, body,
//! content type), with the expected strings copied from the contract, not from the sandbox's code.

#[path = "support/sandbox_raw.rs"]
mod raw;

use ekyc_kiosk::sandbox::SandboxConfig;
use raw::{KEY, assert_exact, asset, b64, call, get, quick_config, request, start, upload_demo_document};
use serde_json::json;
use std::io::Write;
use std::time::{Duration, Instant};

const JSON: &str = "application/json";
const DOC: &str = "/api/document-authentication";
const FACE: &str = "/api/face-authentication";

#[test]
fn enrolment_accept_list_show_delete_and_uniqueness() {
    let sb = start(quick_config());
    let a = sb.addr();

    // E1 with a data-URI prefix on the front.
    let front = format!("data:image/jpeg;base64,{}", b64(&asset("assets/demo/id-front.jpg")));
    let r = call(a, "POST", DOC, &json!({"frontImage_base64": front}));
    assert_eq!((r.status, r.content_type()), (200, JSON), "{}", r.text());
    let v = r.json();
    assert_eq!(v["success"], true);
    assert_eq!(v["result"]["documentNumber"], "SBX4729105");
    assert_eq!(v["result"]["dob"], "1986/03/14");
    let doc = v["documentIdentificationId"].as_str().unwrap().to_string();
    assert_eq!(doc.len(), 36, "{doc}");

    // E2: the demo selfie matches.
    let r = call(
        a,
        "POST",
        FACE,
        &json!({"faceImage_base64": b64(&asset("assets/demo/face.jpg")), "documentIdentificationId": doc}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let score = r.json()["score"].as_f64().unwrap();
    assert!(score >= SandboxConfig::default().face_match_threshold && score <= 1.0, "{score}");

    // E4.
    let req = json!({"email": "alex@example.com", "phoneNumber": "447700900123", "documentIdentificationId": doc});
    assert_exact(&call(a, "POST", "/api/kyc-request", &req), 201, r#"{"message": "Request submitted"}"#, JSON);

    // Uniqueness: the same email (any case) or the same phone, even on another document.
    let doc2 = upload_demo_document(a);
    let same_email =
        json!({"email": "ALEX@example.com", "phoneNumber": "447700900999", "documentIdentificationId": doc2});
    assert_exact(
        &call(a, "POST", "/api/kyc-request", &same_email),
        409,
        r#"{"error": "a kyc request with this email already exists"}"#,
        JSON,
    );
    let same_phone =
        json!({"email": "other@example.com", "phoneNumber": "+44 7700 900123", "documentIdentificationId": doc2});
    assert_exact(
        &call(a, "POST", "/api/kyc-request", &same_phone),
        409,
        r#"{"error": "a kyc request with this phone number already exists"}"#,
        JSON,
    );

    // E6 pending, E7 show (wrapped in an array).
    let pending = get(a, "/api/requests?accepted=false").json();
    let list = pending["requests"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let item = &list[0];
    assert_eq!(
        (item["email"].as_str(), item["phoneNumber"].as_str()),
        (Some("alex@example.com"), Some("447700900123"))
    );
    assert_eq!((item["isValidated"].as_bool(), item["isAccepted"].as_bool()), (Some(true), Some(false)));
    assert_eq!(item["faceMatch"].as_f64(), Some(score));
    assert_eq!(item["idInformation"]["lastName"], "SAMPLE");
    let id = item["id"].as_str().unwrap().to_string();
    let shown = get(a, &format!("/api/requests/{id}"));
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json()["requests"][0]["id"].as_str(), Some(id.as_str()));
    assert!(get(a, "/api/requests?accepted=true").json()["requests"].as_array().unwrap().is_empty());

    // E5, then it is listed as accepted; accepting twice is fine.
    for _ in 0..2 {
        assert_exact(
            &call(a, "PUT", "/api/accept", &json!({"id": id})),
            200,
            r#"{"message": "Kyc request accepted"}"#,
            JSON,
        );
    }
    assert_eq!(get(a, "/api/requests?accepted=true").json()["requests"][0]["isAccepted"], true);
    assert!(get(a, "/api/requests?accepted=false").json()["requests"].as_array().unwrap().is_empty());

    // E9, then the id is gone and the email is free again.
    assert_exact(
        &call(a, "DELETE", "/api/delete-request", &json!({"id": id})),
        200,
        r#"{"message": "KYC request deleted!"}"#,
        JSON,
    );
    assert_exact(&get(a, &format!("/api/requests/{id}")), 404, r#"{"error": "request not found"}"#, JSON);
    assert_exact(
        &call(a, "DELETE", "/api/delete-request", &json!({"id": id})),
        404,
        r#"{"error": "request not found"}"#,
        JSON,
    );
    assert_eq!(call(a, "POST", "/api/kyc-request", &same_email).status, 201);
}

#[test]
fn requests_validate_after_the_configured_delay_and_cannot_be_accepted_before() {
    let sb = start(SandboxConfig { validation_delay: Duration::from_millis(600), ..SandboxConfig::default() });
    let a = sb.addr();
    let doc = upload_demo_document(a);
    let req = json!({"email": "v@example.com", "phoneNumber": "33612345678", "documentIdentificationId": doc});
    assert_eq!(call(a, "POST", "/api/kyc-request", &req).status, 201);
    let item = get(a, "/api/requests?accepted=false").json()["requests"][0].clone();
    assert_eq!(item["isValidated"], false);
    assert_eq!(item["faceMatch"], serde_json::Value::Null, "no face match was made");
    let id = item["id"].as_str().unwrap().to_string();
    assert_exact(
        &call(a, "PUT", "/api/accept", &json!({"id": id})),
        400,
        r#"{"message": "Kyc request not accepted"}"#,
        JSON,
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(a, &format!("/api/requests/{id}")).json()["requests"][0]["isValidated"], true);
    assert_eq!(call(a, "PUT", "/api/accept", &json!({"id": id})).status, 200);
}

#[test]
fn every_documented_error_byte_for_byte() {
    let sb = start(quick_config());
    let a = sb.addr();
    let doc = upload_demo_document(a);
    let front = b64(&asset("assets/demo/id-front.jpg"));
    let face = b64(&asset("assets/demo/face.jpg"));
    let cat = b64(&asset("tests/fixtures/chelsea.png"));
    let gif = b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;");

    let invalid_key = r#"{"error": "invalid api key"}"#;
    let doc_invalid = r#"{"error": "invalid document (front, side, back) image provided"}"#;
    let b64_invalid = r#"{"error": "invalid base64 front image provided"}"#;
    let doc_conflict = r#"{"error": "only one image is accepted per document side!"}"#;
    let not_recognized = r#"{"error": "The document supplied is not recognized!"}"#;
    let face_invalid = r#"{"error": "invalid face image provided"}"#;
    let face_conflict = r#"{"error": "only one face image is accepted!"}"#;
    let no_doc = r#"{"error": "There is no document identification data with the provided id!"}"#;
    let mismatch = r#"{"error": "Face match verification FAILED!"}"#;

    let url = "https://example.com/front.jpg";
    let cases: Vec<(&str, &str, serde_json::Value, u16, &str)> = vec![
        // E1
        ("document: a URL is never fetched", DOC, json!({"frontImage": url}), 400, doc_invalid),
        ("document: a back URL", DOC, json!({"frontImage_base64": front, "backImage": url}), 400, doc_invalid),
        ("document: no front", DOC, json!({"backImage_base64": front}), 400, doc_invalid),
        (
            "document: URL and base64 front",
            DOC,
            json!({"frontImage": url, "frontImage_base64": front}),
            400,
            doc_conflict,
        ),
        (
            "document: URL and base64 side",
            DOC,
            json!({"frontImage_base64": front, "sideImage": url, "sideImage_base64": front}),
            400,
            doc_conflict,
        ),
        ("document: not base64", DOC, json!({"frontImage_base64": "%%% not base64 %%%"}), 400, b64_invalid),
        ("document: a GIF", DOC, json!({"frontImage_base64": gif}), 400, b64_invalid),
        (
            "document: a bad back",
            DOC,
            json!({"frontImage_base64": front, "backImage_base64": "AAAA"}),
            400,
            b64_invalid,
        ),
        ("document: a number", DOC, json!({"frontImage_base64": 42}), 400, b64_invalid),
        ("document: a cat", DOC, json!({"frontImage_base64": cat}), 400, not_recognized),
        ("document: a selfie", DOC, json!({"frontImage_base64": face}), 400, not_recognized),
        // E2
        (
            "face: a URL is never fetched",
            FACE,
            json!({"faceImage": url, "documentIdentificationId": doc}),
            400,
            face_invalid,
        ),
        ("face: no image", FACE, json!({"documentIdentificationId": doc}), 400, face_invalid),
        (
            "face: URL and base64",
            FACE,
            json!({"faceImage": url, "faceImage_base64": face, "documentIdentificationId": doc}),
            400,
            face_conflict,
        ),
        (
            "face: not base64",
            FACE,
            json!({"faceImage_base64": "***", "documentIdentificationId": doc}),
            400,
            b64_invalid,
        ),
        ("face: a GIF", FACE, json!({"faceImage_base64": gif, "documentIdentificationId": doc}), 400, b64_invalid),
        (
            "face: unknown document",
            FACE,
            json!({"faceImage_base64": face, "documentIdentificationId": "nope"}),
            400,
            no_doc,
        ),
        ("face: no document id", FACE, json!({"faceImage_base64": face}), 400, no_doc),
        (
            "face: a man in profile",
            FACE,
            json!({"faceImage_base64": b64(&asset("tests/fixtures/camera.png")), "documentIdentificationId": doc}),
            400,
            mismatch,
        ),
        ("face: a cat", FACE, json!({"faceImage_base64": cat, "documentIdentificationId": doc}), 400, mismatch),
        (
            "face: the card back",
            FACE,
            json!({"faceImage_base64": b64(&asset("assets/demo/id-back.jpg")), "documentIdentificationId": doc}),
            400,
            mismatch,
        ),
        // E4
        (
            "request: unknown document",
            "/api/kyc-request",
            json!({"email": "a@example.com", "phoneNumber": "447700900001", "documentIdentificationId": "nope"}),
            400,
            no_doc,
        ),
        (
            "request: bad email",
            "/api/kyc-request",
            json!({"email": "not-an-email", "phoneNumber": "447700900001", "documentIdentificationId": doc}),
            400,
            r#"{"error": "invalid email address provided"}"#,
        ),
        (
            "request: bad phone",
            "/api/kyc-request",
            json!({"email": "a@example.com", "phoneNumber": "07700", "documentIdentificationId": doc}),
            400,
            r#"{"error": "invalid phone number provided"}"#,
        ),
    ];
    for (name, path, body, status, want) in &cases {
        let r = call(a, "POST", path, body);
        assert_eq!((r.status, r.text().as_str(), r.content_type()), (*status, *want, JSON), "{name}");
    }

    // 401 on every endpoint, with no key or a wrong one.
    let endpoints = [
        ("POST", DOC),
        ("POST", FACE),
        ("POST", "/api/kyc-request"),
        ("PUT", "/api/accept"),
        ("GET", "/api/requests?accepted=true"),
        ("GET", "/api/requests/abc"),
        ("DELETE", "/api/delete-request"),
    ];
    for (method, path) in endpoints {
        for key in [None, Some("wrong"), Some("test-key-12"), Some("")] {
            let r = request(a, method, path, key, Some(b"{}"));
            assert_exact(&r, 401, invalid_key, JSON);
        }
    }

    // E5 unknown id (the `message` key), E6 bad filter, E7/E9 unknown id.
    assert_exact(
        &call(a, "PUT", "/api/accept", &json!({"id": "nope"})),
        400,
        r#"{"message": "Kyc request not accepted"}"#,
        JSON,
    );
    for body in [&b"{}"[..], b"", b"[1]", b"{\"id\": 7}"] {
        let r = request(a, "PUT", "/api/accept", Some(KEY), Some(body));
        assert_exact(&r, 400, r#"{"message": "Kyc request not accepted"}"#, JSON);
    }
    assert_eq!(get(a, "/api/requests?accepted=maybe").status, 400);
    assert_exact(&get(a, "/api/requests/nope"), 404, r#"{"error": "request not found"}"#, JSON);
    assert_exact(
        &call(a, "DELETE", "/api/delete-request", &json!({"id": "nope"})),
        404,
        r#"{"error": "request not found"}"#,
        JSON,
    );

    // Not JSON; unknown path; wrong method; liveness is off by default.
    assert_exact(
        &request(a, "POST", DOC, Some(KEY), Some(b"{not json")),
        400,
        r#"{"error": "invalid request body"}"#,
        JSON,
    );
    assert_eq!(get(a, "/api/nothing-here").status, 404);
    let r = request(a, "GET", DOC, Some(KEY), None);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    assert_eq!(call(a, "POST", "/api/liveness-verification", &json!({})).status, 404);
}

#[test]
fn the_base64_limit_is_30_000_000_bytes_summed_over_the_sides() {
    let sb = start(quick_config());
    let a = sb.addr();
    let too_large = |r: &raw::Reply| assert_exact(r, 413, "Request Entity Too Large", "text/plain");
    // Exactly at the limit: accepted as to size (then refused as not an image: zeros are no PNG or JPEG).
    let half = "A".repeat(15_000_000);
    let at_limit = json!({"frontImage_base64": half, "backImage_base64": half});
    assert_exact(&call(a, "POST", DOC, &at_limit), 400, r#"{"error": "invalid base64 front image provided"}"#, JSON);
    // One byte more, summed over the sides.
    let over = json!({"frontImage_base64": half, "backImage_base64": format!("{half}A")});
    too_large(&call(a, "POST", DOC, &over));
    // The face: one image over the limit.
    let face = json!({"faceImage_base64": "A".repeat(30_000_001), "documentIdentificationId": "x"});
    too_large(&call(a, "POST", FACE, &face));
}

#[test]
fn an_oversize_content_length_is_refused_before_the_body_is_read() {
    let sb = start(quick_config());
    let mut s = raw::connect(sb.addr());
    let head = format!(
        "POST {DOC} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 31000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(b"{\"frontImage_base64\": \"AAAA").unwrap();
    // Then stall: the answer must arrive without the body.
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(24).any(|w| w == b"Request Entity Too Large") {
        let n = std::io::Read::read(&mut s, &mut buf).expect("the 413 arrives while the client stalls");
        assert!(n > 0, "closed without an answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = raw::parse(&got);
    assert_exact(&r, 413, "Request Entity Too Large", "text/plain");
    let call = sb.calls().into_iter().last().unwrap();
    assert_eq!((call.status, call.body_complete), (Some(413), false));
    assert!(call.bytes_received < 1024, "{}", call.bytes_received);
}

#[test]
fn an_oversize_chunked_body_is_cut_off_at_the_cap() {
    let sb = start(quick_config());
    let addr = sb.addr();
    let mut s = raw::connect(addr);
    let head = format!("POST {FACE} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut reader = s.try_clone().unwrap();
    // Keep sending 1 MiB chunks (up to 40 MiB) until the server stops reading.
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..40 {
            if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
                || s.write_all(&chunk).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n");
    });
    let r = raw::parse(&raw::read_all(&mut reader));
    assert_exact(&r, 413, "Request Entity Too Large", "text/plain");
    drop(reader);
    writer.join().unwrap();
    let call = sb.calls().into_iter().last().unwrap();
    assert_eq!((call.status, call.body_complete), (Some(413), false));
    assert!(call.bytes_received <= 30_000_000 + 64 * 1024, "{}", call.bytes_received);
    assert!(call.bytes_received > 29_000_000, "{}", call.bytes_received);
}

/// A minimal RIFF AVI holding JPEG frames (the sandbox only scans for the frames).
fn avi(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"AVI LIST".to_vec();
    for f in frames {
        body.extend_from_slice(b"00dc");
        body.extend_from_slice(&(f.len() as u32).to_le_bytes());
        body.extend_from_slice(f);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn frames_of(rel: &str, shifts: &[u32]) -> Vec<Vec<u8>> {
    let img = image::load_from_memory(&asset(rel)).unwrap().to_rgb8();
    shifts
        .iter()
        .map(|&dx| {
            let (w, h) = (img.width() - 40, img.height() - 40);
            let crop = image::imageops::crop_imm(&img, dx, dx / 2, w, h).to_image();
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&crop).unwrap();
            out
        })
        .collect()
}

#[test]
fn liveness_when_enabled() {
    let sb = start(SandboxConfig { liveness_enabled: true, ..quick_config() });
    let a = sb.addr();
    let doc = upload_demo_document(a);
    let path = "/api/liveness-verification";
    let clip = |frames: &[Vec<u8>]| format!("data:video/x-msvideo;base64,{}", b64(&avi(frames)));
    let moving = frames_of("assets/demo/face.jpg", &[0, 8, 16, 24, 32]);
    let still = frames_of("assets/demo/face.jpg", &[10, 10, 10, 10]);
    let cat = frames_of("tests/fixtures/chelsea.png", &[0, 10, 20, 30]);
    let failed = r#"{"error": ":liveliness verification FAILED!"}"#;

    let r = call(a, "POST", path, &json!({"faceVideo_base64": clip(&moving), "documentIdentificationId": doc}));
    assert_eq!(r.status, 200, "{}", r.text());
    let cases = [
        (json!({"faceVideo_base64": clip(&still), "documentIdentificationId": doc}), 400, failed),
        (json!({"faceVideo_base64": clip(&cat), "documentIdentificationId": doc}), 400, failed),
        (
            json!({"faceVideo_base64": format!("data:video/mp4;base64,{}", b64(b"\0\0\0\x18ftypmp42rest")), "documentIdentificationId": doc}),
            400,
            failed,
        ),
        (
            json!({"faceVideo_base64": b64(&avi(&moving)), "documentIdentificationId": doc}),
            400,
            r#"{"error": "invalid base64 video provided"}"#,
        ),
        (
            json!({"faceVideo_base64": format!("data:video/mp4;base64,{}", b64(b"plain text")), "documentIdentificationId": doc}),
            400,
            r#"{"error": "invalid base64 video provided"}"#,
        ),
        (
            json!({"faceVideo": "https://example.com/v.mp4", "documentIdentificationId": doc}),
            400,
            r#"{"error": "invalid face video provided"}"#,
        ),
        (
            json!({"faceVideo": "https://example.com/v.mp4", "faceVideo_base64": clip(&moving), "documentIdentificationId": doc}),
            400,
            r#"{"error": "only one face video is accepted!"}"#,
        ),
        (
            json!({"faceVideo_base64": clip(&moving), "documentIdentificationId": "nope"}),
            400,
            r#"{"error": "There is no document identification data with the provided id!"}"#,
        ),
    ];
    for (i, (body, status, want)) in cases.iter().enumerate() {
        let r = call(a, "POST", path, body);
        assert_eq!((r.status, r.text().as_str(), r.content_type()), (*status, *want, JSON), "case {i}");
    }
}
