//! The API client against the built-in sandbox on 127.0.0.1:0, end to end through the library: the whole
//! enrolment with the demo ID card and selfie, the operator calls, documented refusals produced by real inputs,
//! and the sandbox's injected faults (dropped after the body, 503 with Retry-After, trickle, 413, redirect,
//! truncated answer) ending in the right typed error and class.

use ekyc_kiosk::api::{
    ApiClient, ApiConfig, ApiError, DocumentUpload, ErrorClass, ErrorCode, FaceMatchConfig, ImageBody, NewRequest,
};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::sandbox::{FaultAction, FaultRule, Sandbox, SandboxConfig, SandboxEndpoint, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use std::path::Path;
use std::time::{Duration, Instant};

const KEY: &str = "sandbox-e2e-key";

fn start() -> Sandbox {
    Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .expect("sandbox")
}

fn config() -> ApiConfig {
    ApiConfig {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(20),
        upload_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(5),
        ..ApiConfig::default()
    }
}

fn client_with(sb: &Sandbox, cfg: ApiConfig, key: &str) -> ApiClient {
    ApiClient::new(&cfg, &FaceMatchConfig::default(), sb.base_url(), ApiKey::new(key)).expect("client")
}

fn client(sb: &Sandbox) -> ApiClient {
    client_with(sb, config(), KEY)
}

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).expect(rel)
}

fn upload_demo_card(api: &ApiClient) -> String {
    let (front, back) = (file("assets/demo/id-front.jpg"), file("assets/demo/id-back.jpg"));
    let doc = DocumentUpload {
        front: ImageBody::from_bytes(&front),
        back: Some(ImageBody::from_reader(Box::new(std::io::Cursor::new(back.clone())), back.len() as u64)),
        side: None,
    };
    api.upload_document(doc).expect("the demo card is recognised").document_id
}

fn contact(email: &str, phone: &str, document_id: &str) -> NewRequest {
    NewRequest {
        email: Email::parse(email).unwrap(),
        phone: Phone::parse(phone).unwrap(),
        document_id: document_id.into(),
    }
}

fn assert_code(result: Result<impl std::fmt::Debug, ApiError>, code: ErrorCode, class: ErrorClass) -> ApiError {
    let err = result.expect_err("an error");
    assert_eq!((err.code(), err.class()), (code, class), "{err}");
    err
}

#[test]
fn the_whole_enrolment_and_the_operator_calls() {
    let sb = start();
    let api = client(&sb);
    let face = file("assets/demo/face.jpg");

    let doc = upload_demo_card(&api);
    let score = api.match_face(&doc, ImageBody::from_bytes(&face)).expect("the demo selfie matches").score;
    assert!((SandboxConfig::default().face_match_threshold..=1.0).contains(&score), "{score}");

    let applicant = contact("alex@example.com", "+44 7700 900123", &doc);
    api.create_request(&applicant).expect("request created");
    // The same contact again: refused as already used.
    assert_code(api.create_request(&applicant), ErrorCode::ContactAlreadyUsed, ErrorClass::CustomerMustAct);

    let pending = api.list_requests(false).expect("list");
    assert_eq!(pending.len(), 1);
    let id = pending[0].id.clone();
    assert_eq!(pending[0].face_match, Some(score));
    assert!(pending[0].id_information.is_object());
    let found = api.find_request(&applicant.email, &applicant.phone).expect("find").expect("found");
    assert_eq!(found.id, id);
    assert_eq!(api.get_request(&id).expect("show").email, "alex@example.com");

    api.accept_request(&id).expect("accept");
    assert!(api.list_requests(false).unwrap().is_empty());
    assert!(api.list_requests(true).unwrap()[0].is_accepted);

    api.delete_request(&id).expect("delete");
    assert_code(api.get_request(&id), ErrorCode::RequestNotFound, ErrorClass::Fatal);
    assert_code(api.delete_request(&id), ErrorCode::RequestNotFound, ErrorClass::Fatal);
    assert_code(api.accept_request("no-such-request"), ErrorCode::RequestNotAccepted, ErrorClass::Fatal);
}

#[test]
fn documented_refusals_from_real_inputs() {
    let sb = start();
    let api = client(&sb);
    let not_an_image = b"this is not a jpeg".to_vec();

    let doc = DocumentUpload { front: ImageBody::from_bytes(&not_an_image), back: None, side: None };
    assert_code(api.upload_document(doc), ErrorCode::DocumentBase64Invalid, ErrorClass::CustomerMustAct);
    let cat = file("tests/fixtures/chelsea.png");
    let doc = DocumentUpload { front: ImageBody::from_bytes(&cat), back: None, side: None };
    assert_code(api.upload_document(doc), ErrorCode::DocumentNotRecognized, ErrorClass::CustomerMustAct);

    let face = file("assets/demo/face.jpg");
    assert_code(
        api.match_face("no-such-document", ImageBody::from_bytes(&face)),
        ErrorCode::DocumentSessionNotFound,
        ErrorClass::CustomerMustAct,
    );
    let doc = upload_demo_card(&api);
    assert_code(
        api.match_face(&doc, ImageBody::from_bytes(&not_an_image)),
        ErrorCode::FaceBase64Invalid,
        ErrorClass::CustomerMustAct,
    );
    let profile = file("tests/fixtures/camera.png");
    assert_code(
        api.match_face(&doc, ImageBody::from_bytes(&profile)),
        ErrorCode::FaceMismatch,
        ErrorClass::CustomerMustAct,
    );
    assert_code(
        api.create_request(&contact("bo@example.com", "+44 7700 900456", "no-such-document")),
        ErrorCode::DocumentSessionNotFound,
        ErrorClass::CustomerMustAct,
    );

    // A wrong key, on a call of each kind.
    let wrong = client_with(&sb, config(), "not-the-key");
    assert_code(wrong.match_face(&doc, ImageBody::from_bytes(&face)), ErrorCode::InvalidApiKey, ErrorClass::Fatal);
    assert_code(wrong.list_requests(false), ErrorCode::InvalidApiKey, ErrorClass::Fatal);
    assert_code(wrong.delete_request("x"), ErrorCode::InvalidApiKey, ErrorClass::Fatal);
}

#[test]
fn data_uri_prefixed_images_are_accepted() {
    let sb = start();
    let api = client_with(&sb, ApiConfig { data_uri_prefix: true, ..config() }, KEY);
    let doc = upload_demo_card(&api);
    api.match_face(&doc, ImageBody::from_bytes(&file("assets/demo/face.jpg"))).expect("match with a prefix");
}

#[test]
fn injected_faults_end_in_the_right_class() {
    let sb = start();
    let api = client(&sb);
    let faults = sb.faults();
    let applicant = contact("cy@example.com", "+44 7700 900789", "doc");

    faults.drop_after_body(Some(SandboxEndpoint::CreateRequest), 1).unwrap();
    let err = assert_code(api.create_request(&applicant), ErrorCode::NetworkUnreachable, ErrorClass::Ambiguous);
    assert!(err.is_ambiguous());

    faults.unavailable(Some(SandboxEndpoint::List), 1, Some(3)).unwrap();
    let err = assert_code(api.list_requests(false), ErrorCode::ServerError, ErrorClass::Transient);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));

    faults.force(Some(SandboxEndpoint::Face), 1, 413, "Request Entity Too Large", "text/plain").unwrap();
    assert_code(
        api.match_face("doc", ImageBody::from_bytes(b"x")),
        ErrorCode::PayloadTooLarge,
        ErrorClass::CustomerMustAct,
    );

    let redirect = FaultAction::Respond {
        status: 307,
        body: String::new(),
        content_type: String::new(),
        headers: vec![("Location".into(), "http://127.0.0.1:9/api/accept".into())],
        cut_after: None,
    };
    faults.add(FaultRule { endpoint: Some(SandboxEndpoint::Accept), times: Some(1), action: redirect }).unwrap();
    let err = assert_code(api.accept_request("r1"), ErrorCode::UnexpectedResponse, ErrorClass::Fatal);
    assert_eq!(err.http_status(), Some(307));

    let truncated = FaultAction::Respond {
        status: 200,
        body: r#"{"documentIdentificationId": "d-1", "result": {}}"#.into(),
        content_type: "application/json".into(),
        headers: Vec::new(),
        cut_after: Some(60),
    };
    faults.add(FaultRule { endpoint: Some(SandboxEndpoint::Document), times: Some(1), action: truncated }).unwrap();
    let doc = DocumentUpload { front: ImageBody::from_bytes(b"x"), back: None, side: None };
    assert_code(api.upload_document(doc), ErrorCode::NetworkUnreachable, ErrorClass::Ambiguous);

    faults.trickle(Some(SandboxEndpoint::Show), 1, Duration::from_millis(100)).unwrap();
    let impatient = client_with(&sb, ApiConfig { request_timeout: Duration::from_secs(1), ..config() }, KEY);
    let started = Instant::now();
    assert_code(impatient.get_request("r1"), ErrorCode::Timeout, ErrorClass::Transient);
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    faults.clear();
}
