//! The customer's happy path, driven only through accessible labels (as a finger or a screen reader would), and the
//! language switch on the welcome screen. Headless: Slint's testing backend, the synchronous DEMO services.

mod ui_support;

use ekyc_kiosk::flow::Event;
use ekyc_kiosk::flow::{FlowConfig, Screen};
use ekyc_kiosk::view::demo::Call;
use std::time::Duration;

#[test]
fn start_to_result_through_the_screens() {
    let k = ui_support::kiosk(FlowConfig::default(), 1280, 800, false);
    assert!(k.shows("DEMO: sample camera pictures"), "the demo must say so: {:?}", k.labels());
    k.press("Start");
    assert!(k.shows("Your privacy"));
    k.press("I agree");

    // Document front: the live hint from the (demo) check shows over the preview, the manual button takes it.
    assert!(k.shows("Step 1 of 3: the front of your ID card"));
    assert!(k.shows("Camera preview with a card guide"));
    assert!(k.shows("Tilt the card to avoid glare"), "{:?}", k.labels());
    k.press("Take the photo now");
    assert!(k.shows("Step 2 of 3: the back of your ID card"));
    k.press("Take the photo now");

    // Face: a good frame starts the countdown, which takes the photo by itself.
    assert!(k.shows("Step 3 of 3: your face"));
    assert!(k.shows("Camera preview with a face guide"));
    let session = k.view.state().session_id;
    k.mailbox.post_verdict(session, true, Some("looks_good".into()));
    k.view.pump();
    k.wait(Duration::from_millis(100));
    assert!(k.shows("Taking the photo in 3"), "{:?}", k.labels());
    k.wait(Duration::from_secs(3));
    k.view.pump();
    assert!(k.shows("Check your photos"), "{:?}", k.labels());
    assert!(k.calls().contains(&Call::Capture(ekyc_kiosk::flow::CaptureTarget::Face)));

    // Review, then contact details on the on-screen keyboard.
    k.press("The photos are fine");
    assert!(k.shows("Email keyboard"));
    let send = k.controls("Send my application");
    assert_eq!(send[0].accessible_enabled(), Some(false), "nothing typed yet");
    k.type_keys("ada@example.org");
    assert_eq!(k.value("Email address"), "ada@example.org");
    assert!(k.shows("Looks right"), "a valid email shows a tick");
    k.press("Mobile phone number, with the country code");
    assert!(k.shows("Phone keypad"));
    k.type_keys("020");
    k.press("Email address");
    k.press("Mobile phone number, with the country code");
    k.press("Clear");
    k.type_keys("+44 20 7946 0958");
    assert_eq!(k.value("Mobile phone number, with the country code"), "+44 20 7946 0958");
    k.press("Send my application");

    // Saved at once by the demo queue; the uploader's answers arrive through the mailbox.
    assert_eq!(k.view.state().screen, Screen::Submitting);
    assert!(k.shows("Sending your application…"));
    let reference = k.view.state().reference().expect("saved").to_string();
    k.mailbox.post_event(Event::Progress { reference: reference.clone(), done: 2, total: 3 });
    k.view.pump();
    assert!(k.shows("Step 2 of 3"), "{:?}", k.labels());
    k.mailbox.post_event(Event::Accepted { reference: reference.clone() });
    k.view.pump();
    assert!(k.shows("Thank you! Your application has been received."));
    assert!(k.shows(&format!("Reference code {reference}")));
    assert!(k.calls().contains(&Call::Enqueue("ada@example.org".into(), None)));
    k.press("Done");
    assert!(k.shows("Start"));
    assert!(k.calls().contains(&Call::Wipe));
    assert!(!k.labels().iter().any(|l| l.contains(&reference)), "the reference is gone");
}

#[test]
fn language_switches_on_the_welcome_screen_and_resets_for_the_next_customer() {
    let k = ui_support::kiosk(FlowConfig::default(), 800, 480, false);
    assert!(k.shows("Start"));
    k.press("Français");
    assert!(k.shows("Commencer"), "{:?}", k.labels());
    assert!(!k.shows("Start"));
    k.press("Commencer");
    assert!(k.shows("J'accepte"));
    assert!(k.shows("Votre vie privée"));
    // Declining ends the session: the next customer gets the configured language.
    k.press("Non merci");
    assert!(k.shows("Start"), "{:?}", k.labels());
    k.press("Français");
    k.press("English");
    assert!(k.shows("Start"));
}
