//! The UI's texts: the English strings in `ui/api.slint` equal the Rust tables they mirror (the error prompts, the
//! contact errors), every `@tr()` string has a French translation, French is really used once selected; and the
//! operator console's retry and purge.

use ekyc_kiosk::api::ErrorCode;
use ekyc_kiosk::contact::ContactError;
use ekyc_kiosk::view::demo::{Call, StillServices};
use ekyc_kiosk::view::ui::{AppWindow, OperatorWindow, Texts};
use ekyc_kiosk::view::{DemoOperatorApi, Mailbox, OperatorView, Services, contact_error_code};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementRoot};
use slint::ComponentHandle;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[test]
fn english_texts_equal_the_rust_tables() {
    i_slint_backend_testing::init_no_event_loop();
    let app = AppWindow::new().unwrap();
    let t = app.global::<Texts>();
    for code in ErrorCode::ALL {
        let p = code.prompt();
        assert_eq!(t.invoke_prompt_title(code.as_str().into()), p.title, "{code}");
        assert_eq!(t.invoke_prompt_message(code.as_str().into()), p.message, "{code}");
        assert_ne!(t.invoke_action_label(p.action.as_str().into()), "", "{code}");
        assert_eq!(t.invoke_operator_explanation(code.as_str().into()), p.operator, "{code}");
    }
    // Every measurement the camera page can show has a worded name.
    let serde_json::Value::Object(metrics) = serde_json::to_value(ekyc_kiosk::capture::Metrics::default()).unwrap()
    else {
        panic!("metrics serialize as an object")
    };
    for key in metrics.keys() {
        let shown = t.invoke_metric_name(key.as_str().into());
        assert!(!shown.is_empty() && shown != key.as_str(), "{key}: no worded name on the camera page");
    }
    for state in ["pending", "in_flight", "needs_user", "failed", "done"] {
        let shown = t.invoke_queue_state(state.into());
        assert!(!shown.is_empty() && shown != state, "{state}: the console words every queue state");
    }
    for h in ekyc_kiosk::capture::Hint::ALL {
        assert_eq!(t.invoke_hint(h.code().into()), h.text(), "{h:?}");
    }
    assert_eq!(t.invoke_hint("no_such_hint".into()), "", "unknown hints show nothing rather than a code");
    // An unknown code (a newer uploader, a corrupt row) still gets a safe prompt.
    assert_eq!(t.invoke_prompt_title("no_such_code".into()), "Something went wrong on our side");
    let errors = [
        ContactError::EmailEmpty,
        ContactError::EmailInvalid,
        ContactError::PhoneEmpty,
        ContactError::PhoneCharacters,
        ContactError::PhoneNoCountryCode,
        ContactError::PhoneLength,
    ];
    for e in errors {
        assert_eq!(t.invoke_contact_error(contact_error_code(&e).into()), capitalised(&e.to_string()), "{e:?}");
    }
}

/// The msgids of `@tr("...")` (and plural `"..." | "..."`) in every .slint file.
fn slint_msgids() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "slint") {
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split("@tr(").skip(1) {
                    // The string literal up to its closing quote, with its escapes undone.
                    let mut chars = part.trim_start().strip_prefix('"').unwrap().chars();
                    let mut id = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => break,
                            '\\' => id.push(chars.next().unwrap()),
                            c => id.push(c),
                        }
                    }
                    out.push(id);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// msgid -> the first msgstr (or msgstr[0]) in the French catalogue.
fn french() -> BTreeMap<String, String> {
    let po = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/translations/fr/LC_MESSAGES/ekyc-kiosk.po"),
    )
    .unwrap();
    let unquote = |l: &str| l.trim().trim_matches('"').replace("\\\"", "\"").replace("\\\\", "\\");
    let mut map = BTreeMap::new();
    let mut id = None;
    for line in po.lines() {
        if let Some(rest) = line.strip_prefix("msgid ") {
            id = Some(unquote(rest));
        } else if let Some(rest) = line.strip_prefix("msgstr ").or_else(|| line.strip_prefix("msgstr[0] "))
            && let Some(id) = id.take()
        {
            map.insert(id, unquote(rest));
        }
    }
    map
}

#[test]
fn every_string_has_a_french_translation_and_french_is_used() {
    i_slint_backend_testing::init_no_event_loop();
    let fr = french();
    let missing: Vec<String> =
        slint_msgids().into_iter().filter(|id| fr.get(id).is_none_or(|s| s.trim().is_empty())).collect();
    assert!(missing.is_empty(), "not translated to French: {missing:#?}");

    let app = AppWindow::new().unwrap();
    slint::select_bundled_translation("fr").unwrap();
    let t = app.global::<Texts>();
    let title = t.invoke_prompt_title("face_mismatch".into());
    assert_eq!(title.as_str(), fr["Your photo didn't match your document"]);
    slint::select_bundled_translation("en").unwrap();
    assert_eq!(t.invoke_prompt_title("face_mismatch".into()), "Your photo didn't match your document");
}

#[test]
fn operator_console_lists_the_queue_and_retries_and_purges() {
    i_slint_backend_testing::init_no_event_loop();
    let app = OperatorWindow::new().unwrap();
    app.window().set_size(slint::PhysicalSize::new(1280, 800));
    app.show().unwrap();
    let mailbox = Mailbox::new(|| {});
    let services = StillServices::new(mailbox.clone());
    let calls = services.calls.clone();
    let services: Box<dyn Services> = Box::new(services);
    let view = OperatorView::new(app, Rc::new(RefCell::new(services)), Box::new(DemoOperatorApi::new(mailbox)));
    view.open();
    let rows = |label: &str| -> Vec<ElementHandle> {
        ElementHandle::find_by_accessible_label(view.host(), label)
            .filter(|e| e.accessible_role() == Some(AccessibleRole::ListItem))
            .collect()
    };
    let button = |label: &str| -> ElementHandle {
        ElementHandle::find_by_accessible_label(view.host(), label)
            .find(|e| e.accessible_role() == Some(AccessibleRole::Button))
            .unwrap()
    };
    for r in ["DEMO-0100", "DEMO-0101", "DEMO-0102", "DEMO-0103"] {
        assert_eq!(rows(r).len(), 1, "{r}");
    }
    // The follow-up contact shows only for the application that needs the customer.
    let texts: Vec<String> = view
        .host()
        .root_element()
        .query_descendants()
        .find_all()
        .into_iter()
        .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
        .collect();
    assert!(texts.iter().any(|t| t.contains("face_mismatch · ada@example.org")), "{texts:?}");
    assert_eq!(button("Retry now").accessible_enabled(), Some(false), "nothing selected");
    rows("DEMO-0100")[0].invoke_accessible_default_action();
    button("Retry now").invoke_accessible_default_action();
    rows("DEMO-0101")[0].invoke_accessible_default_action();
    button("Purge from this kiosk").invoke_accessible_default_action();
    assert_eq!(*calls.lock().unwrap(), vec![Call::Retry("DEMO-0100".into()), Call::Purge("DEMO-0101".into())]);
    assert!(rows("DEMO-0101").is_empty(), "purged rows leave the list");
    assert_eq!(rows("DEMO-0100").len(), 1);
}
