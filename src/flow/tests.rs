//! Table-driven tests of the flow: every transition, every error code's routing, the attempts cap, the idle timeout,
//! the submit deadline, and that nothing of a customer survives a wipe.

use super::*;
use crate::api::{ErrorCode, RetryAction};
use std::time::Duration;

const EMAIL: &str = "ada@example.org";
const PHONE: &str = "+44 20 7946 0958";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Applies events in order; returns the final state and every effect.
fn run(state: &FlowState, events: impl IntoIterator<Item = Event>) -> (FlowState, Vec<Effect>) {
    let mut s = state.clone();
    let mut all = Vec::new();
    for e in events {
        let (next, fx) = step(&s, e);
        s = next;
        all.extend(fx);
    }
    (s, all)
}

fn typed(text: &str) -> Event {
    Event::Key(Key::Text(text.into()))
}

fn captured(s: &FlowState, target: CaptureTarget) -> Event {
    Event::Captured { session: s.session_id, target }
}

fn ready(s: &FlowState) -> Event {
    Event::Verdict { session: s.session_id, ready: true, hint: None }
}

/// Drives a fresh kiosk to `screen` through real transitions.
fn at(config: FlowConfig, screen: Screen) -> FlowState {
    let path: &[Screen] = &[
        Screen::Welcome,
        Screen::Consent,
        Screen::DocumentFront,
        Screen::DocumentBack,
        Screen::Face,
        Screen::Review,
        Screen::Contact,
        Screen::Submitting,
    ];
    let mut s = FlowState::new(config);
    for w in path.windows(2) {
        if s.screen == screen {
            return s;
        }
        let events: Vec<Event> = match w[0] {
            Screen::Welcome => vec![Event::Start],
            Screen::Consent => vec![Event::Accept],
            Screen::DocumentFront | Screen::DocumentBack | Screen::Face => {
                let target = w[0].capture_target().unwrap();
                vec![Event::ManualCapture, captured(&s, target)]
            }
            Screen::Review => vec![Event::ConfirmPhotos],
            Screen::Contact => {
                vec![typed(EMAIL), Event::Focus(Field::Phone), typed(PHONE), Event::Submit]
            }
            _ => unreachable!(),
        };
        s = run(&s, events).0;
        assert_eq!(s.screen, w[1], "driving to {screen:?}");
    }
    assert_eq!(s.screen, screen, "no path to {screen:?}");
    s
}

/// Submitting with the application saved under `REF`.
fn saved_submission(config: FlowConfig) -> FlowState {
    let s = at(config, Screen::Submitting);
    let (s, fx) = step(&s, Event::Saved { session: s.session_id, reference: "REF-1".into() });
    assert!(fx.is_empty());
    assert_eq!(s.reference(), Some("REF-1"));
    s
}

#[test]
fn language_codes_round_trip() {
    for l in Language::ALL {
        assert_eq!(Language::parse(l.code()), Some(l));
    }
    assert_eq!(Language::parse("fr_FR.UTF-8"), Some(Language::French));
    assert_eq!(Language::parse("en-GB"), Some(Language::English));
    assert_eq!(Language::parse("xx"), None);
}

#[test]
fn happy_path_reaches_the_result_with_the_expected_effects() {
    let s0 = FlowState::new(FlowConfig::default());
    let (s, fx) = run(&s0, [Event::SelectLanguage(Language::French), Event::Start, Event::Accept]);
    assert_eq!(s.screen, Screen::DocumentFront);
    assert_eq!(
        fx,
        vec![
            Effect::SetLanguage(Language::French),
            Effect::StartCamera { mode: CameraMode::Document, session: s.session_id }
        ]
    );
    let id = s.session_id;
    let (s, fx) = run(&s, [ready(&s), captured(&s, CaptureTarget::DocumentFront)]);
    assert_eq!(s.screen, Screen::DocumentBack);
    assert_eq!(fx, vec![Effect::Capture { target: CaptureTarget::DocumentFront, session: id }]);
    let (s, fx) = run(&s, [ready(&s), captured(&s, CaptureTarget::DocumentBack)]);
    assert_eq!(s.screen, Screen::Face);
    assert_eq!(
        fx,
        vec![
            Effect::Capture { target: CaptureTarget::DocumentBack, session: id },
            Effect::StartCamera { mode: CameraMode::Face, session: id }
        ]
    );
    // Face: a good frame starts the countdown; the capture fires when it ends.
    let (s, fx) = run(&s, [ready(&s), Event::Tick { now: secs(1) }, Event::Tick { now: secs(2) }]);
    assert!(fx.is_empty());
    assert_eq!(s.face_countdown_left(), Some(1));
    let (s, fx) = step(&s, Event::Tick { now: secs(3) });
    assert_eq!(fx, vec![Effect::Capture { target: CaptureTarget::Face, session: id }]);
    let (s, fx) = step(&s, captured(&s, CaptureTarget::Face));
    assert_eq!(s.screen, Screen::Review);
    assert_eq!(fx, vec![Effect::StopCamera]);
    let (s, fx) =
        run(&s, [Event::ConfirmPhotos, typed(EMAIL), Event::Focus(Field::Phone), typed(PHONE), Event::Submit]);
    assert_eq!(s.screen, Screen::Submitting);
    assert_eq!(
        fx,
        vec![Effect::Enqueue {
            session: id,
            email: crate::contact::Email::parse(EMAIL).unwrap(),
            phone: crate::contact::Phone::parse(PHONE).unwrap(),
            supersedes: None
        }]
    );
    let (s, _) = run(
        &s,
        [
            Event::Saved { session: id, reference: "K7-ABC".into() },
            Event::Progress { reference: "K7-ABC".into(), done: 2, total: 3 },
        ],
    );
    assert_eq!(s.session.submission.as_ref().unwrap().progress, (2, 3));
    let (s, fx) = step(&s, Event::Accepted { reference: "K7-ABC".into() });
    assert_eq!(s.screen, Screen::Result);
    assert_eq!(s.reference(), Some("K7-ABC"));
    assert!(fx.is_empty());
    let (s, fx) = step(&s, Event::Finish);
    assert_eq!(s.screen, Screen::Welcome);
    assert_eq!(fx, vec![Effect::WipeSession, Effect::SetLanguage(Language::English)]);
}

#[test]
fn every_transition_from_every_screen() {
    use CaptureTarget as T;
    use Screen::*;
    // (from, event builder, expected screen, effects that must be among the emitted ones)
    type Build = fn(&FlowState) -> Event;
    let table: Vec<(Screen, Build, Screen, Vec<Effect>)> = vec![
        (Welcome, |_| Event::Start, Consent, vec![]),
        (Welcome, |_| Event::Back, Welcome, vec![]),
        (Welcome, |_| Event::Finish, Welcome, vec![]),
        (Welcome, |_| Event::Submit, Welcome, vec![]),
        (Consent, |_| Event::Accept, DocumentFront, vec![]),
        (Consent, |_| Event::Decline, Welcome, vec![Effect::WipeSession]),
        (Consent, |_| Event::Back, Welcome, vec![Effect::WipeSession]),
        (Consent, |_| Event::ManualCapture, Consent, vec![]),
        (DocumentFront, |_| Event::Back, Consent, vec![Effect::StopCamera]),
        (DocumentFront, |s| captured(s, T::DocumentFront), DocumentFront, vec![Effect::Drop(T::DocumentFront)]),
        (DocumentFront, |_| Event::Finish, Welcome, vec![Effect::StopCamera, Effect::WipeSession]),
        (DocumentFront, |_| Event::ConfirmPhotos, DocumentFront, vec![]),
        (DocumentBack, |_| Event::Back, DocumentFront, vec![Effect::Drop(T::DocumentFront)]),
        (Face, |_| Event::Back, DocumentBack, vec![Effect::Drop(T::DocumentBack)]),
        (Face, |s| captured(s, T::DocumentFront), Face, vec![Effect::Drop(T::DocumentFront)]),
        (Review, |_| Event::Back, Face, vec![Effect::Drop(T::Face)]),
        (Review, |_| Event::Retake(T::DocumentFront), DocumentFront, vec![Effect::Drop(T::DocumentFront)]),
        (Review, |_| Event::Retake(T::DocumentBack), DocumentBack, vec![Effect::Drop(T::DocumentBack)]),
        (Review, |_| Event::Retake(T::Face), Face, vec![Effect::Drop(T::Face)]),
        (Review, |_| Event::ConfirmPhotos, Contact, vec![]),
        (Review, |_| Event::Submit, Review, vec![]),
        (Contact, |_| Event::Back, Review, vec![]),
        (Contact, |_| Event::Submit, Contact, vec![]),
        (Contact, |_| Event::Finish, Welcome, vec![Effect::WipeSession]),
        (Submitting, |_| Event::Back, Submitting, vec![]),
        (Submitting, |s| Event::SaveFailed { session: s.session_id }, AskStaff, vec![]),
        (Submitting, |s| Event::SaveFailed { session: s.session_id + 1 }, Submitting, vec![]),
        (Submitting, |_| Event::Accepted { reference: "unknown".into() }, Submitting, vec![]),
    ];
    for (from, build, to, must) in table {
        let s = at(FlowConfig::default(), from);
        let event = build(&s);
        let (next, fx) = step(&s, event.clone());
        assert_eq!(next.screen, to, "{from:?} + {event:?}");
        for m in &must {
            assert!(fx.contains(m), "{from:?} + {event:?}: {m:?} missing from {fx:?}");
        }
        // The camera runs exactly on the capture screens.
        if from.camera_mode() != to.camera_mode() {
            let start = fx.iter().any(|e| matches!(e, Effect::StartCamera { .. }));
            let stop = fx.contains(&Effect::StopCamera);
            assert!(start || stop, "{from:?} -> {to:?} without a camera effect: {fx:?}");
        }
    }
}

#[test]
fn every_error_code_routes_to_the_step_that_fixes_it() {
    for code in ErrorCode::ALL {
        let s = saved_submission(FlowConfig::default());
        let (s, _) = step(&s, Event::Rejected { reference: "REF-1".into(), code });
        let action = code.prompt().action;
        let expected = match action {
            RetryAction::Wait => Screen::Saved,
            RetryAction::AskStaff => Screen::AskStaff,
            _ => Screen::Retry,
        };
        assert_eq!(s.screen, expected, "{code}");
        assert_eq!(s.session.problem, Some(Problem::Code(code)), "{code}");
        if expected != Screen::Retry {
            // Nothing to press: the retry button does nothing on these screens.
            assert_eq!(step(&s, Event::RetryAction).0.screen, expected, "{code}");
            continue;
        }
        let (after, fx) = step(&s, Event::RetryAction);
        let (screen, dropped): (Screen, &[CaptureTarget]) = match action {
            RetryAction::RetakeFace => (Screen::Face, &[CaptureTarget::Face]),
            RetryAction::RetakeDocument => {
                (Screen::DocumentFront, &[CaptureTarget::DocumentFront, CaptureTarget::DocumentBack])
            }
            RetryAction::StartAgain => (Screen::DocumentFront, &CaptureTarget::ALL),
            RetryAction::EditContact => (Screen::Contact, &[]),
            RetryAction::AskStaff | RetryAction::Wait => unreachable!(),
        };
        assert_eq!(after.screen, screen, "{code}");
        let drops: Vec<CaptureTarget> =
            fx.iter().filter_map(|e| if let Effect::Drop(t) = e { Some(*t) } else { None }).collect();
        assert_eq!(drops, dropped, "{code}");
        assert_eq!(after.session.problem, None);
        // The contact details survive, so the next submission only needs the fixed part.
        assert_eq!(after.session.contact.email, EMAIL);
        // Fix it and submit again: the new application supersedes the rejected one.
        let mut s2 = after;
        while s2.screen != Screen::Contact {
            let events = match s2.screen {
                Screen::Review => vec![Event::ConfirmPhotos],
                _ => {
                    let t = s2.screen.capture_target().unwrap();
                    vec![Event::ManualCapture, captured(&s2, t)]
                }
            };
            s2 = run(&s2, events).0;
        }
        let (s3, fx) = step(&s2, Event::Submit);
        assert_eq!(s3.screen, Screen::Submitting, "{code}");
        assert!(
            fx.iter().any(|e| matches!(e, Effect::Enqueue { supersedes: Some(r), .. } if r == "REF-1")),
            "{code}: {fx:?}"
        );
        assert_eq!(s3.session.attempts, 2);
    }
}

#[test]
fn attempts_are_capped_then_staff_is_asked() {
    for max in [1u32, 2, 3] {
        let config = FlowConfig { max_attempts: max, ..FlowConfig::default() };
        let mut s = saved_submission(config);
        for attempt in 1..=max {
            assert_eq!(s.session.attempts, attempt);
            let reference = s.reference().unwrap().to_string();
            s = step(&s, Event::Rejected { reference, code: ErrorCode::FaceMismatch }).0;
            if attempt == max {
                assert_eq!(s.screen, Screen::AskStaff, "max {max}");
                assert_eq!(s.session.problem, Some(Problem::AttemptsExhausted(ErrorCode::FaceMismatch)));
                break;
            }
            assert_eq!(s.screen, Screen::Retry, "max {max} attempt {attempt}");
            assert_eq!(s.attempts_left(), max - attempt);
            let events = [Event::RetryAction, Event::ManualCapture];
            s = run(&s, events).0;
            s = run(&s, [captured(&s, CaptureTarget::Face), Event::ConfirmPhotos, Event::Submit]).0;
            let reference = format!("REF-{}", attempt + 1);
            s = step(&s, Event::Saved { session: s.session_id, reference }).0;
        }
    }
}

#[test]
fn idle_timeout_warns_counts_down_and_wipes() {
    let config = FlowConfig { idle_timeout: secs(30), idle_countdown: secs(10), ..FlowConfig::default() };
    for screen in
        [Screen::Consent, Screen::DocumentFront, Screen::DocumentBack, Screen::Face, Screen::Review, Screen::Contact]
    {
        let s = at(config, screen);
        let t0 = s.now;
        let (s, _) = step(&s, Event::Tick { now: t0 + secs(29) });
        assert_eq!(s.session.idle_since, None, "{screen:?}");
        let (s, _) = step(&s, Event::Tick { now: t0 + secs(30) });
        assert_eq!(s.idle_left(), Some(10), "{screen:?}");
        // "I'm still here" dismisses it and restarts the timer.
        let (s, _) = step(&s, Event::StillHere);
        assert_eq!(s.session.idle_since, None);
        let (s, _) = run(&s, [Event::Tick { now: t0 + secs(59) }, Event::Tick { now: t0 + secs(60) }]);
        assert_eq!(s.idle_left(), Some(10));
        let (s, fx) = step(&s, Event::Tick { now: t0 + secs(69) });
        assert_eq!((s.screen, s.idle_left()), (screen, Some(1)));
        assert!(fx.is_empty());
        let (s, fx) = step(&s, Event::Tick { now: t0 + secs(70) });
        assert_eq!(s.screen, Screen::Welcome, "{screen:?}");
        assert!(fx.contains(&Effect::WipeSession));
        assert_eq!(fx.contains(&Effect::StopCamera), screen.camera_mode().is_some(), "{screen:?}: {fx:?}");
    }
    // Nobody at the welcome screen: no countdown; the submitting screen is bounded by its own deadline.
    let s = FlowState::new(config);
    assert_eq!(step(&s, Event::Tick { now: secs(3600) }).0.session.idle_since, None);
}

#[test]
fn submit_deadline_shows_saved_or_asks_staff() {
    let config = FlowConfig { submit_deadline: secs(20), idle_timeout: secs(1000), ..FlowConfig::default() };
    // Saved but no answer in time: "saved, will be sent", with the reference.
    let s = saved_submission(config);
    let t0 = s.now;
    let (s1, _) = step(&s, Event::Tick { now: t0 + secs(19) });
    assert_eq!(s1.screen, Screen::Submitting);
    let (s2, _) = step(&s1, Event::Tick { now: t0 + secs(20) });
    assert_eq!((s2.screen, s2.reference()), (Screen::Saved, Some("REF-1")));
    // The answer may still arrive while the customer reads it.
    assert_eq!(step(&s2, Event::Accepted { reference: "REF-1".into() }).0.screen, Screen::Result);
    // Not even saved in time: the customer must not be told it is saved.
    let s = at(config, Screen::Submitting);
    let (s, _) = step(&s, Event::Tick { now: t0 + secs(20) });
    assert_eq!((s.screen, s.session.problem), (Screen::AskStaff, Some(Problem::NotSaved)));
    // A late commit turns it into the saved screen.
    let (s, _) = step(&s, Event::Saved { session: s.session_id, reference: "LATE".into() });
    assert_eq!((s.screen, s.reference()), (Screen::Saved, Some("LATE")));
}

#[test]
fn offline_goes_to_saved_as_soon_as_the_application_is_committed() {
    let s = at(FlowConfig::default(), Screen::Submitting);
    let (s, _) = step(&s, Event::Status(KioskStatus { online: Some(false), pending: 4 }));
    assert_eq!(s.screen, Screen::Submitting, "not saved yet: keep the spinner (bounded by the deadline)");
    let (s, _) = step(&s, Event::Saved { session: s.session_id, reference: "OFF-1".into() });
    assert_eq!((s.screen, s.reference()), (Screen::Saved, Some("OFF-1")));
    assert_eq!(s.status.pending, 4);
    // Already saved when the network drops.
    let s = saved_submission(FlowConfig::default());
    let s = step(&s, Event::Status(KioskStatus { online: Some(true), pending: 1 })).0;
    assert_eq!(s.screen, Screen::Submitting);
    let s = step(&s, Event::Status(KioskStatus { online: Some(false), pending: 1 })).0;
    assert_eq!(s.screen, Screen::Saved);
}

#[test]
fn a_refused_key_asks_for_staff_and_a_later_acceptance_still_shows_the_result() {
    let rejected = |r: &str| Event::Rejected { reference: r.into(), code: ErrorCode::InvalidApiKey };
    // From the sending screen, and from "saved" (the network state arrived first).
    for s in [saved_submission(FlowConfig::default()), {
        let s = saved_submission(FlowConfig::default());
        step(&s, Event::Status(KioskStatus { online: Some(false), pending: 1 })).0
    }] {
        let (s, _) = step(&s, rejected("REF-1"));
        assert_eq!((s.screen, s.session.problem), (Screen::AskStaff, Some(Problem::Code(ErrorCode::InvalidApiKey))));
        assert_eq!(s.reference(), Some("REF-1"), "the reference stays on screen");
        // Another kiosk application's news changes nothing; this one's acceptance shows the result.
        let (s, _) = step(&s, Event::Accepted { reference: "OTHER".into() });
        assert_eq!(s.screen, Screen::AskStaff);
        let (s, _) = step(&s, Event::Accepted { reference: "REF-1".into() });
        assert_eq!(s.screen, Screen::Result);
    }
    // Other ask-staff problems stay where they are.
    let s = saved_submission(FlowConfig::default());
    let (s, _) = step(&s, Event::Rejected { reference: "REF-1".into(), code: ErrorCode::UnexpectedResponse });
    let (s, _) = step(&s, Event::Accepted { reference: "REF-1".into() });
    assert_eq!(s.screen, Screen::AskStaff);
}

#[test]
fn nothing_of_the_previous_customer_survives_a_wipe() {
    let config = FlowConfig::default();
    let s0 = FlowState::new(config);
    let s = step(&s0, Event::SelectLanguage(Language::French)).0;
    let mut s = s;
    let path = [Screen::Consent, Screen::DocumentFront];
    for _ in path {
        s = step(&s, if s.screen == Screen::Welcome { Event::Start } else { Event::Accept }).0;
    }
    let s = run(&s, [Event::ManualCapture, captured(&s, CaptureTarget::DocumentFront)]).0;
    let s = run(&s, [Event::ManualCapture, captured(&s, CaptureTarget::DocumentBack)]).0;
    let s = run(&s, [Event::ManualCapture, captured(&s, CaptureTarget::Face), Event::ConfirmPhotos]).0;
    let s = run(&s, [typed(EMAIL), Event::Focus(Field::Phone), typed(PHONE), Event::Submit]).0;
    let old_id = s.session_id;
    let s = step(&s, Event::Saved { session: old_id, reference: "OLD".into() }).0;
    let s = step(&s, Event::Tick { now: secs(25) }).0;
    assert_eq!(s.screen, Screen::Saved);
    // Walk away: the idle countdown expires.
    let s = run(&s, [Event::Tick { now: secs(85) }, Event::Tick { now: secs(105) }]);
    let (s, fx) = s;
    assert_eq!(s.screen, Screen::Welcome);
    assert!(fx.contains(&Effect::WipeSession));
    assert!(fx.contains(&Effect::SetLanguage(Language::English)));
    assert_eq!(s.session, Session { last_input: secs(105), ..Session::default() });
    assert_eq!(s.language(), Language::English);
    assert_ne!(s.session_id, old_id);
    assert_eq!(s.reference(), None);
    // Late reports about the previous customer change nothing and surface nothing.
    let late = [
        Event::Saved { session: old_id, reference: "OLD".into() },
        Event::Accepted { reference: "OLD".into() },
        Event::Rejected { reference: "OLD".into(), code: ErrorCode::FaceMismatch },
        Event::Progress { reference: "OLD".into(), done: 3, total: 3 },
        Event::Captured { session: old_id, target: CaptureTarget::Face },
        Event::Verdict { session: old_id, ready: true, hint: Some("hold_still".into()) },
        Event::SaveFailed { session: old_id },
    ];
    for e in late {
        let (after, fx) = step(&s, e.clone());
        assert_eq!(after, s, "{e:?}");
        assert!(fx.is_empty(), "{e:?}: {fx:?}");
    }
    // The next customer's capture screens start from nothing.
    let (next, _) = run(&s, [Event::Start, Event::Accept]);
    assert_eq!(next.session.held, vec![]);
    assert_eq!(next.session.contact, ContactDraft::default());
}

#[test]
fn contact_fields_validate_as_typed() {
    let s = at(FlowConfig::default(), Screen::Contact);
    let s = step(&s, typed("ada@")).0;
    assert_eq!(s.session.contact.email_validity(), Validity::Pending, "no error while still typing");
    let s = step(&s, Event::Focus(Field::Phone)).0;
    assert!(matches!(s.session.contact.email_validity(), Validity::Invalid(_)), "error once the field is left");
    let s = run(&s, [Event::Focus(Field::Email), typed("example.org")]).0;
    assert_eq!(s.session.contact.email_validity(), Validity::Valid);
    let s = run(&s, [Event::Focus(Field::Phone), typed("020 7946")]).0;
    assert_eq!(s.session.contact.phone_validity(), Validity::Pending);
    let (s, fx) = step(&s, Event::Submit);
    assert_eq!(s.screen, Screen::Contact);
    assert!(fx.is_empty());
    assert_eq!(s.session.contact.phone_validity(), Validity::Invalid(crate::contact::ContactError::PhoneNoCountryCode));
    assert_eq!(s.session.contact.focus, Field::Phone);
    let s = run(&s, [Event::Key(Key::Clear), typed("+442079460958")]).0;
    assert_eq!(s.session.contact.phone_validity(), Validity::Valid);
    let s = run(&s, [Event::Key(Key::Backspace)]).0;
    assert_eq!(s.session.contact.phone, "+44207946095");
    // Bounded: a stuck key cannot grow the field without limit, and control characters never enter.
    let s = run(&s, [Event::Key(Key::Text("9".repeat(100))), Event::Key(Key::Text("\n\t".into()))]).0;
    assert_eq!(s.session.contact.phone.chars().count(), 24);
    assert!(!s.session.contact.phone.contains('\n'));
}

#[test]
fn face_countdown_starts_on_a_good_frame_and_a_bad_one_cancels_it() {
    let s = at(FlowConfig::default(), Screen::Face);
    let id = s.session_id;
    let bad = Event::Verdict { session: id, ready: false, hint: Some("move_closer".into()) };
    let (s, _) = run(&s, [Event::Tick { now: secs(10) }, ready(&s)]);
    assert_eq!(s.face_countdown_left(), Some(3));
    let (s, _) = run(&s, [Event::Tick { now: secs(12) }, bad]);
    assert_eq!((s.face_countdown_left(), s.session.capture.hint.as_deref()), (None, Some("move_closer")));
    let (s, fx) = run(&s, [Event::Tick { now: secs(20) }]);
    assert!(fx.is_empty());
    let (s, fx) = run(&s, [ready(&s), Event::Tick { now: secs(22) }, Event::Tick { now: secs(23) }]);
    assert_eq!(fx, vec![Effect::Capture { target: CaptureTarget::Face, session: id }]);
    // While the capture runs, verdicts and more ticks do not fire a second one.
    let (s, fx) = run(&s, [ready(&s), Event::Tick { now: secs(30) }, Event::ManualCapture]);
    assert!(fx.is_empty());
    // A refused capture says why and lets the countdown start again.
    let (s, _) =
        step(&s, Event::CaptureRejected { session: id, target: CaptureTarget::Face, hint: Some("too_dark".into()) });
    assert!(!s.session.capture.capturing);
    assert_eq!(s.session.capture.hint.as_deref(), Some("too_dark"));
}

#[test]
fn clock_never_goes_backwards() {
    let s = at(FlowConfig::default(), Screen::Consent);
    let s = step(&s, Event::Tick { now: secs(50) }).0;
    let s = step(&s, Event::Tick { now: secs(10) }).0;
    assert_eq!(s.now, secs(50));
}

#[test]
fn a_locked_queue_keeps_the_kiosk_out_of_service_until_it_unlocks() {
    let fresh = FlowState::new(FlowConfig::default());
    let (locked, fx) = step(&fresh, Event::QueueLocked(true));
    assert!(fx.is_empty());
    assert!(locked.out_of_service.queue_locked && locked.out_of_service.any());
    // Start does nothing: nobody goes through the capture to be told at the end that nothing could be saved.
    let (s, fx) = step(&locked, Event::Start);
    assert_eq!((s.screen, fx.len()), (Screen::Welcome, 0));
    // The language can still change, and the state survives the idle clock and a session's end.
    let (s, _) = run(&s, [Event::SelectLanguage(Language::French), Event::Tick { now: secs(3600) }]);
    assert!(s.out_of_service.any());
    assert_eq!(s.screen, Screen::Welcome);
    // Unlocked (the key restored): customers can start again.
    let (s, _) = run(&s, [Event::QueueLocked(false), Event::Start]);
    assert_eq!(s.screen, Screen::Consent);
    // A customer already in the flow is not thrown out; the save itself reports the problem.
    let s = at(FlowConfig::default(), Screen::Contact);
    let (s, fx) = step(&s, Event::QueueLocked(true));
    assert_eq!((s.screen, fx.len()), (Screen::Contact, 0));
    let (s, _) = step(&s, Event::Finish);
    assert_eq!(s.screen, Screen::Welcome);
    assert!(s.out_of_service.any(), "a wipe keeps the kiosk-wide state");
    assert_eq!(step(&s, Event::Start).0.screen, Screen::Welcome);
}

#[test]
fn an_unavailable_camera_keeps_customers_away_and_sends_one_mid_capture_to_staff() {
    let fresh = FlowState::new(FlowConfig::default());
    let (gone, fx) = step(&fresh, Event::CameraAvailable(false));
    assert!(fx.is_empty());
    assert!(gone.out_of_service.camera_unavailable && !gone.out_of_service.queue_locked);
    assert_eq!(step(&gone, Event::Start).0.screen, Screen::Welcome, "nobody starts without a camera");
    // Plugged in again (the capture thread keeps looking): customers can start by themselves.
    let (back, _) = run(&gone, [Event::CameraAvailable(true), Event::Start]);
    assert_eq!(back.screen, Screen::Consent);
    // Both faults: both must clear.
    let (s, _) = run(&fresh, [Event::CameraAvailable(false), Event::QueueLocked(true), Event::CameraAvailable(true)]);
    assert!(s.out_of_service.any());
    // A customer on a capture screen is told to ask staff (nothing was saved) and the camera stops.
    for screen in [Screen::DocumentFront, Screen::DocumentBack, Screen::Face] {
        let s = at(FlowConfig::default(), screen);
        let (s, fx) = step(&s, Event::CameraAvailable(false));
        assert_eq!(s.screen, Screen::AskStaff, "{screen:?}");
        assert_eq!(s.session.problem, Some(Problem::CameraUnavailable));
        assert_eq!(fx, vec![Effect::StopCamera]);
    }
    // Elsewhere the customer goes on (the photos are taken already).
    let s = at(FlowConfig::default(), Screen::Contact);
    assert_eq!(step(&s, Event::CameraAvailable(false)).0.screen, Screen::Contact);
}
