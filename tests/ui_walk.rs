//! The whole kiosk walked through headless, as a customer and an operator would use it: the real `AppWindow` and
//! `KioskView` over the real `LiveServices` (a replayed 1280x720 camera showing a card or a face, the real checks
//! and auto-capture, the real encrypted queue in a temp dir), the real `Uploader` and a `Sandbox` on 127.0.0.1:0,
//! and the operator console over the same services. Controls are pressed by accessible label, text is typed on the
//! on-screen keyboard, the flow's clock is advanced by hand, and every wait polls with a real-time deadline.
//!
//! Covered: the happy path; every error code the API can return to the kiosk's calls (E1 document, E2 face, E4
//! request), injected with the contract's exact bodies, shown with its prompt and routed by its button; the
//! attempts cap; the offline path and the sending afterwards without the customer; the idle timeout's wipe; the
//! operator's list, retry, purge and the rejected-key alert. Not reachable through the kiosk, so not here: the
//! liveness codes (E3 is off and clips are not stored), `request_not_accepted` and `request_not_found` (E5, E7 and
//! E9 are operator calls the customer flow never makes). Two kinds never reach a prompt by design, and are shown
//! as what the customer does see: the transient codes (the uploader retries them; "saved", the offline test) and
//! `invalid_api_key` (sending pauses: "this kiosk needs attention" for the customer, with the reference; an alert
//! for the operator; the result once the key works again; the operator test).

mod capture_common;
mod ui_support;
mod walk_support;

use ekyc_kiosk::api::{DocumentUpload, ErrorCode, ImageBody, NewRequest, RetryAction};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::flow::{CaptureTarget, Event, FlowConfig, Problem, Screen};
use ekyc_kiosk::sandbox::{FaultAction, FaultRule, SandboxEndpoint as Endpoint};
use ekyc_kiosk::view::{Report, Services};
use std::time::{Duration, Instant};
use walk_support::{CAPTURE_SECS, KeyFile, OUTCOME_SECS, Rig, Setup, Shot};

const JSON: &str = "application/json";
// The contract's error bodies, byte for byte (shared/api/lapis-ekyc-contract.md, section 3).
const DOC_URL_INVALID: &str = r#"{"error": "invalid document (front, side, back) image provided"}"#;
const BASE64_INVALID: &str = r#"{"error": "invalid base64 front image provided"}"#;
const DOC_CONFLICT: &str = r#"{"error": "only one image is accepted per document side!"}"#;
const DOC_NOT_RECOGNIZED: &str = r#"{"error": "The document supplied is not recognized!"}"#;
const TOO_LARGE: &str = "Request Entity Too Large";
const FACE_URL_INVALID: &str = r#"{"error": "invalid face image provided"}"#;
const FACE_CONFLICT: &str = r#"{"error": "only one face image is accepted!"}"#;
const NO_DOCUMENT: &str = r#"{"error": "There is no document identification data with the provided id!"}"#;
const FACE_MISMATCH: &str = r#"{"error": "Face match verification FAILED!"}"#;
const INVALID_KEY: &str = r#"{"error": "invalid api key"}"#;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn phone(s: &str) -> Phone {
    Phone::parse(s).unwrap()
}

/// The button on the retry screen for `action`, and a label of the screen it leads to.
fn action_button(action: RetryAction) -> (&'static str, Screen, &'static str) {
    match action {
        RetryAction::RetakeFace => ("Take my photo again", Screen::Face, "Step 3 of 3: your face"),
        RetryAction::RetakeDocument => {
            ("Photograph my document again", Screen::DocumentFront, "Step 1 of 3: the front of your ID card")
        }
        RetryAction::EditContact => ("Change my email or phone", Screen::Contact, "How can we reach you?"),
        RetryAction::StartAgain => {
            ("Take the photos again", Screen::DocumentFront, "Step 1 of 3: the front of your ID card")
        }
        other => panic!("{other:?} has no retry button"),
    }
}

/// Answers the next `times` calls of `endpoint` with `status` and `body`.
fn force(rig: &Rig, endpoint: Endpoint, times: u32, status: u16, body: &str, content_type: &str) {
    rig.sandbox().faults().force(Some(endpoint), times, status, body, content_type).unwrap();
}

fn succeeded(rig: &Rig, endpoint: Endpoint) -> usize {
    rig.sandbox()
        .calls()
        .iter()
        .filter(|c| c.endpoint == Some(endpoint) && c.status.is_some_and(|s| (200..300).contains(&s)))
        .count()
}

#[test]
fn happy_path_from_welcome_to_the_reference_code() {
    let rig = Rig::new(Setup::default());
    assert!(rig.shows("Open your account in a few minutes"), "{}", rig.context());
    assert!(!rig.shows("DEMO: sample camera pictures"), "a replayed camera is not the demo");
    rig.press("Start");
    assert!(rig.shows("Your privacy"), "{}", rig.context());
    rig.press("I agree");

    // Document front: the camera's frames fill the preview; the card is captured by itself.
    assert!(rig.shows("Step 1 of 3: the front of your ID card"), "{}", rig.context());
    assert!(rig.shows("Camera preview with a card guide"));
    rig.wait_until("a camera frame on the preview", CAPTURE_SECS, |r| r.kiosk().get_preview_live());
    assert_eq!(rig.kiosk().get_preview().size().width, 640, "the preview is scaled for display");
    rig.take_document();
    assert!(rig.shows("Step 2 of 3: the back of your ID card"), "{}", rig.context());
    rig.take_document();

    // Face: a well-placed face starts the countdown (3, 2, 1 on the flow's clock), then the photo is taken.
    assert!(rig.shows("Step 3 of 3: your face"), "{}", rig.context());
    assert!(rig.shows("Camera preview with a face guide"));
    let countdown = rig.take_face();
    assert_eq!(countdown.first(), Some(&3), "{countdown:?}");
    assert!(countdown.windows(2).any(|w| w == [3, 2]), "the countdown did not run down: {countdown:?}");

    // Review: the three photos taken from the camera, then the contact details on the keyboard.
    assert!(rig.shows("Check your photos"), "{}", rig.context());
    assert_eq!(rig.view().state().session.held.len(), 3);
    rig.take_missing_photos();
    assert!(rig.shows("How can we reach you?"), "{}", rig.context());
    assert!(!rig.kiosk().get_can_submit());
    rig.type_keys("walk.happy@example.com");
    assert_eq!(rig.value("Email address"), "walk.happy@example.com");
    assert!(rig.shows("Looks right"), "{}", rig.context());
    rig.press("Mobile phone number, with the country code");
    assert!(rig.shows("Phone keypad"), "{}", rig.context());
    rig.type_keys("+44 7946 000101");
    assert!(rig.kiosk().get_can_submit());

    rig.press("Send my application");
    assert_eq!(rig.screen(), Screen::Submitting, "{}", rig.context());
    assert!(rig.shows("Sending your application…"), "{}", rig.context());
    rig.wait_until("the result", OUTCOME_SECS, |r| r.screen() != Screen::Submitting);
    assert_eq!(rig.screen(), Screen::Result, "{}", rig.context());
    assert!(rig.shows("Thank you! Your application has been received."), "{}", rig.context());
    let reference = rig.kiosk().get_reference().to_string();
    assert!(!reference.is_empty());
    assert!(rig.shows(&format!("Reference code {reference}")), "{}", rig.context());

    // The sandbox really received it, once; the queue has it done.
    for endpoint in [Endpoint::Document, Endpoint::Face, Endpoint::CreateRequest] {
        assert_eq!(succeeded(&rig, endpoint), 1, "{endpoint:?}: {}", rig.context());
    }
    let request = rig.client.find_request(&email("walk.happy@example.com"), &phone("+447946000101")).unwrap();
    let request = request.unwrap_or_else(|| panic!("no request at the sandbox: {}", rig.context()));
    assert_eq!(request.email, "walk.happy@example.com");
    assert!(request.face_match.is_some_and(|s| s >= 0.6), "{request:?}");
    assert_eq!(rig.entry(&reference).unwrap().state.as_str(), "done");
    rig.wait_until("the status bar: online, nothing waiting", 30, |r| {
        r.shows("Online") && !r.labels().iter().any(|l| l.contains("waiting to be sent"))
    });

    // Done: the next customer starts from a clean welcome screen.
    rig.press("Done");
    assert_eq!(rig.screen(), Screen::Welcome);
    let k = rig.kiosk();
    for photo in [k.get_front_photo(), k.get_back_photo(), k.get_face_photo()] {
        assert_eq!(photo.size().width, 0);
    }
    assert_eq!(k.get_reference(), "");
}

/// The labels of the walk, in English and in French.
struct Words {
    start: &'static str,
    agree: &'static str,
    photos_fine: &'static str,
    phone_field: &'static str,
    send: &'static str,
    thanks: &'static str,
    done: &'static str,
}

const ENGLISH: Words = Words {
    start: "Start",
    agree: "I agree",
    photos_fine: "The photos are fine",
    phone_field: "Mobile phone number, with the country code",
    send: "Send my application",
    thanks: "Thank you! Your application has been received.",
    done: "Done",
};

const FRENCH: Words = Words {
    start: "Commencer",
    agree: "J'accepte",
    photos_fine: "Les photos sont bonnes",
    phone_field: "Numéro de mobile, avec l'indicatif du pays",
    send: "Envoyer ma demande",
    thanks: "Merci ! Votre demande a bien été reçue.",
    done: "Terminé",
};

/// The kiosk on the product's demo defaults (the camera `auto` finds none here and shows the demo card and
/// portrait): a customer goes from Start to the reference code by touch alone, the demo camera taking each photo by
/// itself, in English and then in French.
#[test]
fn the_demo_defaults_take_a_customer_to_the_reference_code_in_both_languages() {
    let rig = Rig::new(Setup { demo_camera: true, ..Setup::default() });
    rig.wait_until("the DEMO badge", 10, |r| {
        r.shows("DEMO: sample pictures, test service") || r.shows("DEMO: sample camera pictures")
    });
    for (n, (lang, w)) in [("en", &ENGLISH), ("fr", &FRENCH)].into_iter().enumerate() {
        if lang == "fr" {
            rig.press("Français");
        }
        rig.press(w.start);
        rig.press(w.agree);
        for here in [Screen::DocumentFront, Screen::DocumentBack, Screen::Face] {
            assert_eq!(rig.screen(), here, "{}", rig.context());
            // Nothing is shown to the camera by the test: the demo camera brings what the screen asks for, and
            // the face countdown runs on the flow's clock.
            let deadline = Instant::now() + Duration::from_secs(CAPTURE_SECS);
            while rig.screen() == here {
                rig.pump();
                if here == Screen::Face && rig.kiosk().get_countdown() >= 0 {
                    rig.tick(Duration::from_secs(1));
                }
                assert!(Instant::now() < deadline, "no capture on {here:?}: {}", rig.context());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        assert_eq!(rig.screen(), Screen::Review, "{}", rig.context());
        assert_eq!(rig.view().state().session.held.len(), 3);
        rig.press(w.photos_fine);
        let address = format!("demo.walk{n}@example.com");
        rig.type_keys(&address);
        rig.press(w.phone_field);
        rig.type_keys(&format!("+44794600030{n}"));
        rig.press(w.send);
        rig.wait_until("the result", OUTCOME_SECS, |r| r.screen() != Screen::Submitting);
        assert_eq!(rig.screen(), Screen::Result, "{lang}: {}", rig.context());
        assert!(rig.shows(w.thanks), "{lang}: {}", rig.context());
        let reference = rig.kiosk().get_reference().to_string();
        assert!(!reference.is_empty(), "{lang}");
        // The demo card's portrait and the demo face are the same person: the sandbox matched them.
        let request = rig.client.find_request(&email(&address), &phone(&format!("+4479460003{n:02}"))).unwrap();
        let request = request.unwrap_or_else(|| panic!("{lang}: no request at the sandbox: {}", rig.context()));
        assert!(request.face_match.is_some_and(|s| s >= 0.6), "{lang}: {request:?}");
        rig.press(w.done);
        assert_eq!(rig.screen(), Screen::Welcome, "{lang}");
    }
}

/// What makes the API refuse an application.
#[derive(Debug, Clone, Copy)]
enum Cause {
    /// The next `times` calls of the endpoint answer this (the uploader recovers once from some codes by itself, so
    /// they must come twice to reach the customer).
    Fault { endpoint: Endpoint, times: u32, status: u16, body: &'static str, content_type: &'static str },
    /// No fault: the email already belongs to a request at the sandbox, which answers 409 on its own.
    EmailTaken,
}

const TAKEN_EMAIL: &str = "walk.taken@example.com";
const FREE_EMAIL: &str = "walk.free@example.com";
const RETRY_PHONE: &str = "+44 7946 000202";

/// Every code a customer can fix that the API can return to the kiosk's calls, with what fixes it. The last one
/// changes the email to a free one.
const RETRY_CASES: [(ErrorCode, Cause, RetryAction); 11] = {
    use Cause::{EmailTaken, Fault};
    use Endpoint::{CreateRequest, Document, Face};
    use ErrorCode as C;
    use RetryAction as A;
    const fn f(endpoint: Endpoint, times: u32, status: u16, body: &'static str) -> Cause {
        Fault { endpoint, times, status, body, content_type: JSON }
    }
    [
        (C::FaceMismatch, f(Face, 1, 400, FACE_MISMATCH), A::RetakeFace),
        (C::FaceImageInvalid, f(Face, 1, 400, FACE_URL_INVALID), A::RetakeFace),
        (C::FaceBase64Invalid, f(Face, 1, 400, BASE64_INVALID), A::RetakeFace),
        // The uploader uploads the document again once by itself; the second loss reaches the customer.
        (C::DocumentSessionNotFound, f(Face, 2, 400, NO_DOCUMENT), A::RetakeDocument),
        (C::DocumentImageInvalid, f(Document, 1, 400, DOC_URL_INVALID), A::RetakeDocument),
        (C::DocumentBase64Invalid, f(Document, 1, 400, BASE64_INVALID), A::RetakeDocument),
        (C::DocumentNotRecognized, f(Document, 1, 400, DOC_NOT_RECOGNIZED), A::RetakeDocument),
        // The uploader re-encodes smaller once by itself; a second 413 reaches the customer.
        (
            C::PayloadTooLarge,
            Fault { endpoint: Document, times: 2, status: 413, body: TOO_LARGE, content_type: "text/plain" },
            A::StartAgain,
        ),
        (
            C::PayloadTooLarge,
            Fault { endpoint: Face, times: 2, status: 413, body: TOO_LARGE, content_type: "text/plain" },
            A::StartAgain,
        ),
        (C::DocumentSessionNotFound, f(CreateRequest, 2, 400, NO_DOCUMENT), A::RetakeDocument),
        (C::ContactAlreadyUsed, EmailTaken, A::EditContact),
    ]
};

/// An earlier customer's request at the sandbox uses `email`.
fn register_earlier_request(rig: &Rig, email_text: &str) {
    let front = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/id-front.jpg")).unwrap();
    let doc =
        rig.client.upload_document(DocumentUpload { front: ImageBody::from_bytes(&front), back: None, side: None });
    let document_id = doc.unwrap().document_id;
    let request = NewRequest { email: email(email_text), phone: phone("+33 6 12 34 56 78"), document_id };
    rig.client.create_request(&request).unwrap();
    rig.sandbox().faults().clear_calls();
}

#[test]
fn every_retry_prompt_leads_back_to_the_step_that_fixes_it() {
    let max_attempts = 20;
    let rig = Rig::new(Setup { flow: FlowConfig { max_attempts, ..FlowConfig::default() }, ..Setup::default() });
    register_earlier_request(&rig, TAKEN_EMAIL);
    rig.walk_to_contact(TAKEN_EMAIL, RETRY_PHONE);
    let mut references = Vec::new();
    // One customer session throughout: each retry keeps what it does not need to take again.
    for (i, (code, cause, action)) in RETRY_CASES.into_iter().enumerate() {
        assert_eq!(code.prompt().action, action, "{code}: the table changed");
        if let Cause::Fault { endpoint, times, status, body, content_type } = cause {
            force(&rig, endpoint, times, status, body, content_type);
        }
        let (screen, reference) = rig.submit();
        assert_eq!(screen, Screen::Retry, "{code}: {}", rig.context());
        assert_eq!(rig.view().state().session.problem, Some(Problem::Code(code)), "{}", rig.context());
        let prompt = code.prompt();
        assert!(rig.shows(prompt.title), "{code}: {}", rig.context());
        assert!(rig.shows(prompt.message), "{code}: {}", rig.context());
        let left = max_attempts - 1 - i as u32;
        assert!(rig.shows(&format!("You can try {left} more times.")), "{code}: {}", rig.context());
        assert!(rig.sandbox().faults().rules().is_empty(), "{code}: the fault was not used up: {}", rig.context());
        // The application waits in the queue for the customer (the operator sees it), with its code.
        let entry = rig.entry(&reference).unwrap();
        assert_eq!((entry.state.as_str(), entry.last_error.as_deref()), ("needs_user", Some(code.as_str())));
        assert!(!references.contains(&reference), "a retry is a new application");
        references.push(reference);

        let (button, next, next_label) = action_button(action);
        rig.press(button);
        assert_eq!(rig.screen(), next, "{code}: {}", rig.context());
        assert!(rig.shows(next_label), "{code}: {}", rig.context());
        let held = rig.view().state().session.held;
        let kept: &[CaptureTarget] = match action {
            RetryAction::RetakeFace => &[CaptureTarget::DocumentFront, CaptureTarget::DocumentBack],
            RetryAction::RetakeDocument => &[CaptureTarget::Face],
            RetryAction::StartAgain => &[],
            _ => &CaptureTarget::ALL,
        };
        assert!(held.len() == kept.len() && kept.iter().all(|t| held.contains(t)), "{code}: held {held:?}");
        if action == RetryAction::EditContact {
            assert_eq!(rig.value("Email address"), TAKEN_EMAIL);
            rig.type_contact(FREE_EMAIL, RETRY_PHONE);
        } else {
            rig.take_missing_photos();
            // The contact details typed before are kept.
            assert_eq!(rig.value("Email address"), TAKEN_EMAIL);
        }
    }

    // With a free email and nothing injected, the last attempt goes through.
    let (screen, reference) = rig.submit();
    assert_eq!(screen, Screen::Result, "{}", rig.context());
    assert!(rig.shows(&format!("Reference code {reference}")), "{}", rig.context());
    assert_eq!(rig.entry(&reference).unwrap().state.as_str(), "done");
    assert!(rig.client.find_request(&email(FREE_EMAIL), &phone(RETRY_PHONE)).unwrap().is_some());
}

#[test]
fn what_the_customer_cannot_fix_goes_to_staff_and_attempts_are_capped() {
    let rig = Rig::new(Setup { flow: FlowConfig { max_attempts: 2, ..FlowConfig::default() }, ..Setup::default() });
    let cases = [
        (ErrorCode::DocumentImageConflict, Endpoint::Document, 400, DOC_CONFLICT),
        (ErrorCode::FaceImageConflict, Endpoint::Face, 400, FACE_CONFLICT),
        // A status the contract does not describe.
        (ErrorCode::UnexpectedResponse, Endpoint::Document, 418, r#"{"error": "I'm a teapot"}"#),
    ];
    for (i, (code, endpoint, status, body)) in cases.into_iter().enumerate() {
        assert_eq!(code.prompt().action, RetryAction::AskStaff);
        rig.walk_to_contact(&format!("walk.staff{i}@example.com"), &format!("+44 7946 00030{i}"));
        force(&rig, endpoint, 1, status, body, JSON);
        let (screen, reference) = rig.submit();
        assert_eq!(screen, Screen::AskStaff, "{code}: {}", rig.context());
        assert!(rig.shows("Something went wrong on our side"), "{code}: {}", rig.context());
        assert!(rig.shows("Please ask a member of staff for help."), "{code}: {}", rig.context());
        assert!(rig.shows(&format!("Reference code {reference}")), "{code}: {}", rig.context());
        assert!(!rig.labels().iter().any(|l| l.contains("again")), "no retry is offered: {}", rig.context());
        let entry = rig.entry(&reference).unwrap();
        assert_eq!((entry.state.as_str(), entry.last_error.as_deref()), ("failed", Some(code.as_str())));
        rig.press("Done");
        assert_eq!(rig.screen(), Screen::Welcome);
    }

    // Two attempts allowed: the second face mismatch asks for staff instead of a third photo.
    rig.walk_to_contact("walk.capped@example.com", "+44 7946 000309");
    force(&rig, Endpoint::Face, 1, 400, FACE_MISMATCH, JSON);
    assert_eq!(rig.submit().0, Screen::Retry, "{}", rig.context());
    assert!(rig.shows("You can try 1 more time."), "{}", rig.context());
    rig.press("Take my photo again");
    rig.take_missing_photos();
    force(&rig, Endpoint::Face, 1, 400, FACE_MISMATCH, JSON);
    let (screen, reference) = rig.submit();
    assert_eq!(screen, Screen::AskStaff, "{}", rig.context());
    assert_eq!(rig.view().state().session.problem, Some(Problem::AttemptsExhausted(ErrorCode::FaceMismatch)));
    assert!(rig.shows("Please ask a member of staff"), "{}", rig.context());
    assert!(
        rig.shows("We tried several times without success. A member of staff will help you finish your application."),
        "{}",
        rig.context()
    );
    assert!(!rig.shows("Take my photo again"));
    assert_eq!(rig.entry(&reference).unwrap().state.as_str(), "needs_user");
}

#[test]
fn offline_the_application_is_saved_and_sent_when_the_network_is_back() {
    let rig = Rig::new(Setup::default());
    // The API's gateway answers 503 to everything until further notice.
    rig.sandbox()
        .faults()
        .add(FaultRule { endpoint: None, times: None, action: FaultAction::Unavailable { retry_after: None } })
        .unwrap();
    rig.walk_to_contact("walk.offline@example.com", "+44 7946 000401");
    let (screen, reference) = rig.submit();
    assert_eq!(screen, Screen::Saved, "{}", rig.context());
    assert!(rig.shows("Your application is saved"), "{}", rig.context());
    assert!(
        rig.shows(
            "Your application is saved and will be sent as soon as the connection is back. You don't need to wait."
        ),
        "{}",
        rig.context()
    );
    assert!(rig.shows(&format!("Reference code {reference}")), "{}", rig.context());
    rig.wait_until("the status bar: offline, one waiting", 30, |r| {
        r.shows("Offline") && r.shows("1 application waiting to be sent")
    });
    assert!(rig.sandbox().calls().iter().any(|c| c.status == Some(503)), "{}", rig.context());
    assert!(matches!(rig.entry(&reference).unwrap().state.as_str(), "pending" | "in_flight"));

    // The customer leaves; the status bar is the kiosk's, not the customer's, and stays.
    rig.press("Done");
    assert_eq!(rig.screen(), Screen::Welcome);
    assert!(rig.shows("Offline") && rig.shows("1 application waiting to be sent"), "{}", rig.context());

    // The network comes back: the application is sent without anyone at the kiosk.
    rig.sandbox().faults().clear();
    rig.wait_for_state(&reference, "done", OUTCOME_SECS);
    rig.wait_until("the status bar: online, nothing waiting", 30, |r| {
        r.shows("Online") && !r.labels().iter().any(|l| l.contains("waiting to be sent"))
    });
    assert_eq!(rig.screen(), Screen::Welcome, "the next customer's screen is left alone");
    let request = rig.client.find_request(&email("walk.offline@example.com"), &phone("+447946000401")).unwrap();
    assert!(request.is_some(), "{}", rig.context());
}

#[test]
fn idle_timeout_asks_then_wipes_everything_of_the_customer() {
    let config = FlowConfig::default();
    let rig = Rig::new(Setup::default());
    rig.press("Français");
    assert_eq!(rig.kiosk().get_language(), "fr");
    rig.press("Commencer");
    rig.press("J'accepte");
    rig.take_document();
    rig.take_document();
    rig.take_face();
    assert!(rig.shows("Vérifiez vos photos"), "{}", rig.context());
    // Back to a capture screen with the front and the face held, and the customer walks away.
    rig.press("Reprendre le verso");
    assert_eq!(rig.screen(), Screen::DocumentBack, "{}", rig.context());
    rig.camera.show(Shot::Nobody);
    let state = rig.view().state();
    let session = state.session_id;
    assert_eq!(state.session.held, vec![CaptureTarget::DocumentFront, CaptureTarget::Face]);

    // No touch for the idle timeout: "Are you still there?"; a touch dismisses it.
    rig.tick(config.idle_timeout - Duration::from_secs(1));
    assert!(!rig.shows("Êtes-vous toujours là ?"), "{}", rig.context());
    rig.tick(Duration::from_secs(1));
    assert!(rig.shows("Êtes-vous toujours là ?"), "{}", rig.context());
    assert_eq!(rig.kiosk().get_idle_left(), 20);
    rig.press("Je suis toujours là");
    assert!(!rig.shows("Êtes-vous toujours là ?"), "{}", rig.context());
    assert_eq!(rig.screen(), Screen::DocumentBack);

    // Then nothing again: the countdown runs out and the session is wiped.
    rig.tick(config.idle_timeout);
    assert!(
        rig.shows("Pour protéger votre vie privée, cette demande sera effacée dans 20 secondes."),
        "{}",
        rig.context()
    );
    rig.tick(config.idle_countdown - Duration::from_secs(1));
    assert!(
        rig.shows("Pour protéger votre vie privée, cette demande sera effacée dans 1 seconde."),
        "{}",
        rig.context()
    );
    rig.tick(Duration::from_secs(1));
    rig.pump();

    assert_eq!(rig.screen(), Screen::Welcome, "{}", rig.context());
    let state = rig.view().state();
    assert_eq!(state.session_id, session + 1);
    assert!(state.session.held.is_empty() && state.session.submission.is_none());
    let k = rig.kiosk();
    assert_eq!(k.get_language(), "en", "the language is back to the default");
    assert!(rig.shows("Start") && !rig.shows("Commencer"), "{}", rig.context());
    assert!(!rig.shows("Are you still there?"));
    assert_eq!(k.get_idle_left(), -1);
    for photo in [k.get_front_photo(), k.get_back_photo(), k.get_face_photo(), k.get_preview()] {
        assert_eq!(photo.size().width, 0, "an image of the last customer is still in the Kiosk global");
    }
    assert!(!k.get_preview_live());

    // The services dropped the photos too: saving that session now finds nothing to save.
    rig.live.0.borrow_mut().enqueue(session, email("walk.idle@example.com"), phone("+44 7946 000501"), None);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.contains(&Event::SaveFailed { session }) {
        assert!(Instant::now() < deadline, "no answer to the save: {seen:?}");
        seen.extend(rig.mailbox.take().1.into_iter().filter_map(|r| match r {
            Report::Event(e) => Some(e),
            _ => None,
        }));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!seen.iter().any(|e| matches!(e, Event::Saved { .. })), "{seen:?}");
    assert!(rig.queue.list().unwrap().is_empty(), "nothing of the customer reached the queue");
}

#[test]
fn operator_sees_who_to_follow_up_retries_purges_and_the_key_alert() {
    let rig = Rig::new(Setup { flow: FlowConfig { max_attempts: 5, ..FlowConfig::default() }, ..Setup::default() });
    // A customer whose face did not match walks away from the retry prompt: the application waits for them.
    rig.walk_to_contact("walk.op@example.com", "+44 7946 000601");
    force(&rig, Endpoint::Face, 1, 400, FACE_MISMATCH, JSON);
    let (screen, needs_user) = rig.submit();
    assert_eq!(screen, Screen::Retry, "{}", rig.context());
    rig.press("Cancel");
    assert_eq!(rig.screen(), Screen::Welcome);
    // The next one meets a defect nobody at the kiosk can fix.
    rig.walk_to_contact("walk.op2@example.com", "+44 7946 000603");
    force(&rig, Endpoint::Document, 1, 400, DOC_CONFLICT, JSON);
    let (screen, failed) = rig.submit();
    assert_eq!(screen, Screen::AskStaff, "{}", rig.context());
    rig.press("Done");

    let op = rig.operator();
    assert!(op.shows("Applications on this kiosk"), "{:?}", op.labels());
    let row = op.row_texts(&needs_user);
    assert!(row.contains(&"Needs customer".to_string()), "{row:?}");
    assert!(row.contains(&"face_mismatch · walk.op@example.com / 447946000601".to_string()), "{row:?}");
    let row = op.row_texts(&failed);
    assert!(row.contains(&"Failed".to_string()) && row.contains(&"document_image_conflict".to_string()), "{row:?}");
    assert!(!row.iter().any(|t| t.contains("walk.op2@example.com")), "contact details only to follow up: {row:?}");
    assert!(!op.shows("The API key was rejected: sending is paused until it is fixed. Nothing is lost."));

    // Retry: the application is sent again now (the face matches this time) and the list follows.
    op.select(&needs_user);
    op.press("Retry now");
    assert!(op.shows(&format!("{needs_user} will be sent again now.")), "{:?}", op.labels());
    rig.wait_until("the retried application to be done on the console", OUTCOME_SECS, |_| {
        op.press("Refresh");
        op.row(&needs_user).is_some() && op.row_texts(&needs_user).contains(&"Sent".to_string())
    });
    assert_eq!(rig.entry(&needs_user).unwrap().state.as_str(), "done");
    assert!(rig.client.find_request(&email("walk.op@example.com"), &phone("+447946000601")).unwrap().is_some());

    // Purge: gone from the list and from the queue.
    op.select(&failed);
    op.press("Purge from this kiosk");
    assert!(op.shows(&format!("{failed} and its images were deleted from this kiosk.")), "{:?}", op.labels());
    assert!(op.row(&failed).is_none(), "{:?}", op.labels());
    assert!(rig.entry(&failed).is_none());
    assert!(op.row(&needs_user).is_some());

    // The API refuses the key: the customer's application is saved, sending pauses, the customer is asked to see a
    // member of staff (nothing they entered is lost) and the console says why.
    rig.sandbox()
        .faults()
        .add(FaultRule {
            endpoint: Some(Endpoint::Document),
            times: None,
            action: FaultAction::Respond {
                status: 401,
                body: INVALID_KEY.into(),
                content_type: JSON.into(),
                headers: Vec::new(),
                cut_after: None,
            },
        })
        .unwrap();
    rig.walk_to_contact("walk.key@example.com", "+44 7946 000602");
    let (screen, paused) = rig.submit();
    assert_eq!(screen, Screen::AskStaff, "{}", rig.context());
    let prompt = ErrorCode::InvalidApiKey.prompt();
    assert!(rig.shows(prompt.title) && rig.shows(prompt.message), "{}", rig.context());
    assert!(rig.shows(&format!("Reference code {paused}")), "{}", rig.context());
    assert!(rig.shows("Offline"), "{}", rig.context());
    let alert = "The API key was rejected: sending is paused until it is fixed. Nothing is lost.";
    rig.wait_until("the key alert on the console", 30, |_| {
        op.press("Refresh");
        op.shows(alert)
    });
    assert!(op.row_texts(&paused).contains(&"Waiting".to_string()), "{:?}", op.row_texts(&paused));

    // The key works again: the paused application goes out by itself, and the customer still there sees it.
    rig.sandbox().faults().clear();
    rig.wait_for_state(&paused, "done", OUTCOME_SECS);
    rig.wait_until("the key alert to clear", 30, |_| {
        op.press("Refresh");
        !op.shows(alert)
    });
    rig.wait_until("the result on the kiosk", 30, |r| r.screen() == Screen::Result);
    assert!(rig.shows(&format!("Reference code {paused}")), "{}", rig.context());
}

#[test]
fn a_queue_without_its_key_puts_the_kiosk_out_of_service_and_the_console_says_why() {
    for (key, alert) in [
        (
            KeyFile::Missing,
            "The queue is locked: its key file queue.key is missing. Nothing can be saved or sent. Restore queue.key \
             from the backup into the data folder, then restart the kiosk. The saved applications are kept.",
        ),
        (
            KeyFile::Mismatch,
            "The queue is locked: its key file queue.key does not match the saved applications. Nothing can be \
             saved or sent. Restore the right queue.key from the backup, then restart the kiosk. The saved \
             applications are kept.",
        ),
    ] {
        let rig = Rig::new(Setup { key, ..Setup::default() });
        rig.pump();
        // The customer is told before starting, not after the photos; the status bar says it too.
        let out = "This kiosk is out of service for the moment. Please ask a member of staff.";
        assert!(rig.shows(out), "{key:?}: {}", rig.context());
        assert!(rig.shows("Cannot save applications: please ask a member of staff"), "{}", rig.context());
        assert!(!rig.shows("Start"), "{key:?}: no Start button: {}", rig.context());
        assert!(rig.view().state().out_of_service.queue_locked);
        // Rust decides, not the screen: a start that arrives anyway is ignored.
        rig.kiosk().invoke_start();
        assert_eq!(rig.screen(), Screen::Welcome, "{}", rig.context());
        // The language still switches, and the message follows it.
        rig.press("Français");
        assert!(!rig.shows(out) && rig.labels().iter().any(|l| l.contains("hors service")), "{}", rig.context());
        rig.press("English");

        // The operator sees which key problem it is and what to do; the list still shows.
        let op = rig.operator();
        assert!(op.shows(alert), "{key:?}: {:?}", op.labels());
        assert!(op.shows("No applications are waiting on this kiosk."), "{:?}", op.labels());
        // The kiosk's own idea of it does not fade with time or a session's end.
        rig.tick(Duration::from_secs(600));
        assert!(rig.shows(out), "{}", rig.context());
    }
    // With its key, the same kiosk starts normally and shows no alert.
    let rig = Rig::new(Setup::default());
    rig.pump();
    assert!(rig.shows("Start") && !rig.view().state().out_of_service.any(), "{}", rig.context());
    let op = rig.operator();
    assert!(!op.labels().iter().any(|l| l.starts_with("The queue")), "{:?}", op.labels());
}
