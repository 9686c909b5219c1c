//! Layout at the kiosk's screen sizes (800x480 and 1280x800, landscape and portrait): on every main screen each
//! control is at least 48 px in both directions and lies wholly inside the window.

mod ui_support;

use ekyc_kiosk::api::ErrorCode;
use ekyc_kiosk::flow::staff::StaffConfig;
use ekyc_kiosk::flow::{Event, Field, FlowConfig, Key, KioskStatus};
use ekyc_kiosk::secret::StaffPin;
use ekyc_kiosk::view::ui::{ConsolePage, Operator};
use ekyc_kiosk::view::{DemoOperatorApi, QueueLock, Report};
use i_slint_backend_testing::{AccessibleRole, ElementRoot};
use slint::ComponentHandle;
use std::time::Duration;
use ui_support::Kiosk;

fn check(k: &Kiosk, (w, h): (u32, u32), screen: &str) {
    let controls: Vec<_> = k
        .app()
        .root_element()
        .query_descendants()
        .match_predicate(|e| matches!(e.accessible_role(), Some(AccessibleRole::Button | AccessibleRole::TextInput)))
        .find_all();
    assert!(!controls.is_empty(), "{w}x{h} {screen}: no controls");
    for c in controls {
        let label = c.accessible_label().unwrap_or_default();
        let size = c.size();
        let pos = c.absolute_position();
        let what = format!("{w}x{h} {screen}: {label:?} at {pos:?} size {size:?}");
        assert!(size.width >= 47.5 && size.height >= 47.5, "too small to touch: {what}");
        assert!(
            pos.x >= -0.5
                && pos.y >= -0.5
                && pos.x + size.width <= w as f32 + 0.5
                && pos.y + size.height <= h as f32 + 0.5,
            "outside the window: {what}"
        );
    }
}

fn walk(size: (u32, u32)) {
    let k = ui_support::kiosk(FlowConfig::default(), size.0, size.1, false);
    let ev = |e: Event| {
        k.view.handle(e);
        k.view.pump();
    };
    check(&k, size, "welcome");
    ev(Event::Start);
    check(&k, size, "consent");
    ev(Event::Accept);
    check(&k, size, "document");
    ev(Event::ManualCapture);
    ev(Event::ManualCapture);
    check(&k, size, "face");
    ev(Event::ManualCapture);
    check(&k, size, "review");
    ev(Event::ConfirmPhotos);
    ev(Event::Key(Key::Text("ada@example".into())));
    ev(Event::Focus(Field::Phone));
    check(&k, size, "contact, phone keypad");
    ev(Event::Key(Key::Text("+44 20 7946 0958".into())));
    ev(Event::Focus(Field::Email));
    check(&k, size, "contact, email keyboard");
    ev(Event::Key(Key::Text(".org".into())));
    ev(Event::Status(KioskStatus { online: Some(true), pending: 0 }));
    ev(Event::Submit);
    let reference = k.view.state().reference().unwrap().to_string();
    ev(Event::Rejected { reference, code: ErrorCode::DocumentNotRecognized });
    check(&k, size, "retry");
    k.wait(FlowConfig::default().idle_timeout);
    check(&k, size, "idle");
    k.wait(Duration::from_secs(1));
    ev(Event::StillHere);
    ev(Event::RetryAction);
    check(&k, size, "document again");

    // Staff: the PIN pad and every page of the console, over the welcome screen.
    ev(Event::Finish);
    let pin = StaffPin::parse("246813").unwrap();
    k.view.enable_staff(
        StaffConfig::new(Some(pin), Duration::from_secs(90)),
        Box::new(DemoOperatorApi::new(k.mailbox.clone())),
        None,
    );
    check(&k, size, "welcome with the staff button");
    k.press("Staff");
    check(&k, size, "staff PIN");
    k.type_keys("246813");
    k.press("Enter");
    check(&k, size, "console: queue");
    for (page, name) in [
        (ConsolePage::Requests, "console: requests"),
        (ConsolePage::Camera, "console: camera"),
        (ConsolePage::Connection, "console: connection"),
    ] {
        k.app().global::<Operator>().invoke_show_page(page);
        k.view.pump();
        k.view.pump();
        check(&k, size, name);
    }
    k.app().global::<Operator>().invoke_show_page(ConsolePage::Requests);
    k.view.pump();
    k.app().global::<Operator>().invoke_delete_request("5f0c9a3e-0000-4000-8000-000000000002".into());
    check(&k, size, "console: delete confirmation");

    // The queue loses its key: the console's longest alert, then the out-of-service welcome screen.
    k.app().global::<Operator>().invoke_cancel_delete();
    k.app().global::<Operator>().invoke_show_page(ConsolePage::Queue);
    k.mailbox.post(Report::QueueLocked(Some(QueueLock::KeyMismatch)));
    k.view.pump();
    check(&k, size, "console: queue locked");
    k.press("Exit");
    assert!(k.view.state().out_of_service.queue_locked);
    check(&k, size, "welcome, out of service");
}

#[test]
fn small_landscape() {
    walk((800, 480));
}

#[test]
fn large_landscape() {
    walk((1280, 800));
}

#[test]
fn small_portrait() {
    walk((480, 800));
}

#[test]
fn large_portrait() {
    walk((800, 1280));
}
