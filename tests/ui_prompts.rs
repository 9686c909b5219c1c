//! Retry prompts for several error codes (each action leads back to the step that fixes it), the attempts cap,
//! the offline path, a failed save, and the idle timeout that wipes the session. Headless, through accessible labels.

mod ui_support;

use ekyc_kiosk::api::ErrorCode;
use ekyc_kiosk::flow::{Event, FlowConfig, KioskStatus, Screen};
use std::time::Duration;
use ui_support::Kiosk;

/// From the welcome screen to "sending", through the real controls.
fn submit(k: &Kiosk, email: &str) {
    k.press("Start");
    k.press("I agree");
    for _ in 0..3 {
        k.press("Take the photo now");
    }
    k.press("The photos are fine");
    k.type_keys(email);
    k.press("Mobile phone number, with the country code");
    k.type_keys("+33 1 23 45 67 89");
    k.press("Send my application");
    let screen = k.view.state().screen;
    assert!(matches!(screen, Screen::Submitting | Screen::Saved | Screen::AskStaff), "{screen:?}: {:?}", k.labels());
}

fn reject(k: &Kiosk, code: ErrorCode) {
    let reference = k.view.state().reference().expect("saved").to_string();
    k.mailbox.post_event(Event::Rejected { reference, code });
    k.view.pump();
}

#[test]
fn retry_prompts_lead_back_to_the_step_that_fixes_them() {
    // (code, the action button's label, a label of the screen it leads to)
    let cases = [
        (ErrorCode::FaceMismatch, "Take my photo again", "Step 3 of 3: your face"),
        (ErrorCode::DocumentNotRecognized, "Photograph my document again", "Step 1 of 3: the front of your ID card"),
        (ErrorCode::DocumentSessionNotFound, "Photograph my document again", "Step 1 of 3: the front of your ID card"),
        (ErrorCode::ContactAlreadyUsed, "Change my email or phone", "How can we reach you?"),
        (ErrorCode::PayloadTooLarge, "Take the photos again", "Step 1 of 3: the front of your ID card"),
        (ErrorCode::LivenessFailed, "Take my photo again", "Step 3 of 3: your face"),
    ];
    let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, false);
    for (code, action, next) in cases {
        submit(&k, "ada@example.org");
        reject(&k, code);
        let prompt = code.prompt();
        assert!(k.shows(prompt.title), "{code}: {:?}", k.labels());
        assert!(k.shows(prompt.message), "{code}: {:?}", k.labels());
        assert!(k.shows("You can try 2 more times."), "{code}: {:?}", k.labels());
        k.press(action);
        assert!(k.shows(next), "{code}: {:?}", k.labels());
        if k.view.state().screen == Screen::Contact {
            // The contact screen has no cancel button of its own: back to the review, which has one.
            k.press("Back");
        }
        k.press("Cancel");
        assert!(k.shows("Start"));
    }
}

#[test]
fn codes_the_customer_cannot_fix_ask_for_staff_and_attempts_are_capped() {
    let k = ui_support::kiosk(FlowConfig { max_attempts: 2, ..FlowConfig::default() }, 1280, 800, false);
    submit(&k, "ada@example.org");
    reject(&k, ErrorCode::InvalidApiKey);
    assert!(k.shows("This kiosk needs attention"), "{:?}", k.labels());
    k.press("Done");

    submit(&k, "ada@example.org");
    reject(&k, ErrorCode::FaceMismatch);
    assert!(k.shows("You can try 1 more time."), "{:?}", k.labels());
    k.press("Take my photo again");
    k.press("Take the photo now");
    k.press("The photos are fine");
    k.press("Send my application");
    reject(&k, ErrorCode::FaceMismatch);
    assert!(k.shows("Please ask a member of staff"), "{:?}", k.labels());
    assert!(!k.shows("Take my photo again"));
}

#[test]
fn offline_shows_saved_with_the_reference_and_the_status_bar_says_so() {
    let k = ui_support::kiosk(FlowConfig::default(), 800, 480, false);
    k.mailbox.post_event(Event::Status(KioskStatus { online: Some(false), pending: 2 }));
    k.view.pump();
    assert!(k.shows("Offline"));
    assert!(k.shows("2 applications waiting to be sent"), "{:?}", k.labels());
    submit(&k, "ada@example.org");
    let reference = k.view.state().reference().unwrap().to_string();
    assert!(
        k.shows(
            "Your application is saved and will be sent as soon as the connection is back. You don't need to wait."
        ),
        "{:?}",
        k.labels()
    );
    assert!(k.shows(&format!("Reference code {reference}")));
    // Slow rather than offline: the submit deadline gives the same screen.
    k.press("Done");
    k.mailbox.post_event(Event::Status(KioskStatus { online: Some(true), pending: 0 }));
    k.view.pump();
    submit(&k, "ada@example.org");
    k.wait(FlowConfig::default().submit_deadline);
    assert!(k.shows("Your application is saved"), "{:?}", k.labels());
}

#[test]
fn a_failed_save_never_claims_the_application_is_saved() {
    let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, true);
    submit(&k, "ada@example.org");
    assert!(k.shows("We couldn't save your application"), "{:?}", k.labels());
    assert!(!k.labels().iter().any(|l| l.contains("is saved")));
}

#[test]
fn idle_timeout_asks_then_wipes_and_the_next_customer_sees_nothing() {
    let config = FlowConfig::default();
    let k = ui_support::kiosk(config, 1280, 800, false);
    k.press("Start");
    k.press("I agree");
    for _ in 0..3 {
        k.press("Take the photo now");
    }
    k.press("The photos are fine");
    k.type_keys("secret.person@example.org");
    k.wait(config.idle_timeout);
    assert!(k.shows("Are you still there?"), "{:?}", k.labels());
    assert!(k.shows("For your privacy, this application will be cleared in 20 seconds."), "{:?}", k.labels());
    k.press("I'm still here");
    assert!(!k.shows("Are you still there?"));
    assert_eq!(k.value("Email address"), "secret.person@example.org");
    k.wait(config.idle_timeout);
    k.wait(config.idle_countdown - Duration::from_secs(1));
    assert!(k.shows("For your privacy, this application will be cleared in 1 second."), "{:?}", k.labels());
    k.wait(Duration::from_secs(1));
    assert!(k.shows("Start"), "{:?}", k.labels());
    assert!(k.calls().contains(&ekyc_kiosk::view::demo::Call::Wipe));
    // The next customer: nothing of the previous one anywhere on any screen up to the contact details.
    k.press("Start");
    k.press("I agree");
    for _ in 0..3 {
        assert!(!k.labels().iter().any(|l| l.contains("secret.person")));
        k.press("Take the photo now");
    }
    k.press("The photos are fine");
    assert_eq!(k.value("Email address"), "");
}
