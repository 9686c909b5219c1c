//! The transition function. Pure: the same state and event always give the same result.

use super::{CaptureTarget, Effect, Event, Field, FlowState, Key, Problem, Screen, Session, Submission, Validity};
use crate::api::{ErrorCode, RetryAction};

/// Longest email the keyboard accepts (RFC 5321's path limit; `Email::parse` refuses longer).
const MAX_EMAIL_CHARS: usize = 254;
/// Longest phone text the keyboard accepts (15 digits of E.164 plus a `+` and separators).
const MAX_PHONE_CHARS: usize = 24;

/// Applies one event to the state: returns the next state and the effects for the glue, in order.
pub fn step(state: &FlowState, event: Event) -> (FlowState, Vec<Effect>) {
    let mut s = state.clone();
    let mut fx = Vec::new();
    if event.is_input() {
        s.session.last_input = s.now;
        s.session.idle_since = None;
    }
    match event {
        Event::Tick { now } => tick(&mut s, &mut fx, now),
        Event::SelectLanguage(lang) => {
            if s.screen == Screen::Welcome && s.language() != lang {
                s.session.language = Some(lang);
                fx.push(Effect::SetLanguage(lang));
            }
        }
        Event::Start => {
            // Nobody starts an application that could not be saved.
            if s.screen == Screen::Welcome && !s.out_of_service.any() {
                go(&mut s, &mut fx, Screen::Consent);
            }
        }
        Event::Accept => {
            if s.screen == Screen::Consent {
                s.session.consent = true;
                let next = next_capture_screen(&s.session);
                go(&mut s, &mut fx, next);
            }
        }
        Event::Decline => {
            if s.screen == Screen::Consent {
                wipe(&mut s, &mut fx);
            }
        }
        Event::Back => back(&mut s, &mut fx),
        Event::Finish => {
            if s.screen != Screen::Welcome {
                wipe(&mut s, &mut fx);
            }
        }
        Event::Verdict { session, ready, hint } => {
            let Some(target) = s.screen.capture_target() else { return (s, fx) };
            if session != s.session_id || s.session.capture.capturing {
                return (s, fx);
            }
            s.session.capture.hint = hint;
            if target == CaptureTarget::Face {
                if ready {
                    s.session.capture.countdown_since.get_or_insert(s.now);
                } else {
                    s.session.capture.countdown_since = None;
                }
            } else if ready {
                request_capture(&mut s, &mut fx, target);
            }
        }
        Event::ManualCapture => {
            if let Some(target) = s.screen.capture_target()
                && !s.session.capture.capturing
            {
                request_capture(&mut s, &mut fx, target);
            }
        }
        Event::Captured { session, target } => {
            if session != s.session_id {
                // A late result of an earlier session: the glue discards it (the wipe dropped everything).
                return (s, fx);
            }
            if s.screen.capture_target() != Some(target) || !s.session.capture.capturing {
                fx.push(Effect::Drop(target));
                return (s, fx);
            }
            if !s.session.held.contains(&target) {
                s.session.held.push(target);
            }
            let next = next_capture_screen(&s.session);
            go(&mut s, &mut fx, next);
        }
        Event::CaptureRejected { session, target, hint } => {
            if session == s.session_id && s.screen.capture_target() == Some(target) {
                s.session.capture.capturing = false;
                s.session.capture.countdown_since = None;
                s.session.capture.hint = hint;
            }
        }
        Event::Retake(target) => {
            if s.screen == Screen::Review {
                drop_capture(&mut s, &mut fx, target);
                go(&mut s, &mut fx, target.screen());
            }
        }
        Event::ConfirmPhotos => {
            if s.screen == Screen::Review && all_held(&s.session) {
                go(&mut s, &mut fx, Screen::Contact);
            }
        }
        Event::Focus(field) => {
            if s.screen == Screen::Contact {
                let left = s.session.contact.focus;
                leave_field(&mut s.session, left);
                s.session.contact.focus = field;
            }
        }
        Event::Key(key) => {
            if s.screen == Screen::Contact {
                type_key(&mut s.session, key);
            }
        }
        Event::Submit => {
            if s.screen == Screen::Contact {
                submit(&mut s, &mut fx);
            }
        }
        Event::Saved { session, reference } => {
            if session != s.session_id {
                return (s, fx);
            }
            let Some(sub) = s.session.submission.as_mut() else { return (s, fx) };
            if sub.reference.is_some() {
                return (s, fx);
            }
            sub.reference = Some(reference);
            let late = s.screen == Screen::AskStaff && s.session.problem == Some(Problem::NotSaved);
            if (s.screen == Screen::Submitting && s.status.online == Some(false)) || late {
                s.session.problem = None;
                go(&mut s, &mut fx, Screen::Saved);
            }
        }
        Event::SaveFailed { session } => {
            if session == s.session_id && s.screen == Screen::Submitting && s.reference().is_none() {
                s.session.problem = Some(Problem::NotSaved);
                go(&mut s, &mut fx, Screen::AskStaff);
            }
        }
        Event::Progress { reference, done, total } => {
            if s.reference() == Some(reference.as_str())
                && let Some(sub) = s.session.submission.as_mut()
            {
                sub.progress = (done.min(total), total);
            }
        }
        Event::Accepted { reference } => {
            // Also after "this kiosk needs attention" (the key was refused, the application waited): a customer
            // still there sees it went through.
            let waiting = matches!(s.screen, Screen::Submitting | Screen::Saved)
                || (s.screen == Screen::AskStaff && s.session.problem == Some(Problem::Code(ErrorCode::InvalidApiKey)));
            if s.reference() == Some(reference.as_str()) && waiting {
                s.session.problem = None;
                go(&mut s, &mut fx, Screen::Result);
            }
        }
        Event::Rejected { reference, code } => {
            if s.reference() == Some(reference.as_str()) && matches!(s.screen, Screen::Submitting | Screen::Saved) {
                route_error(&mut s, &mut fx, code, reference);
            }
        }
        Event::Status(status) => {
            s.status = status;
            if s.screen == Screen::Submitting && status.online == Some(false) && s.reference().is_some() {
                go(&mut s, &mut fx, Screen::Saved);
            }
        }
        Event::QueueLocked(locked) => s.out_of_service.queue_locked = locked,
        Event::CameraAvailable(available) => {
            s.out_of_service.camera_unavailable = !available;
            // A customer in the middle of the captures cannot go on: nothing is saved yet, staff must look.
            if !available && s.screen.camera_mode().is_some() {
                s.session.problem = Some(Problem::CameraUnavailable);
                go(&mut s, &mut fx, Screen::AskStaff);
            }
        }
        Event::RetryAction => {
            if s.screen == Screen::Retry {
                retry(&mut s, &mut fx);
            }
        }
        Event::StillHere => {}
    }
    (s, fx)
}

fn tick(s: &mut FlowState, fx: &mut Vec<Effect>, now: std::time::Duration) {
    if now < s.now {
        // The clock is monotonic; an older tick is a reordered message.
        return;
    }
    s.now = now;
    if s.screen.idle_applies() {
        match s.session.idle_since {
            None if now.saturating_sub(s.session.last_input) >= s.config.idle_timeout => {
                s.session.idle_since = Some(now);
            }
            Some(since) if now.saturating_sub(since) >= s.config.idle_countdown => {
                wipe(s, fx);
                return;
            }
            _ => {}
        }
    }
    if s.screen == Screen::Face
        && !s.session.capture.capturing
        && let Some(since) = s.session.capture.countdown_since
        && now.saturating_sub(since) >= s.config.face_countdown
    {
        request_capture(s, fx, CaptureTarget::Face);
    }
    if s.screen == Screen::Submitting
        && let Some(sub) = &s.session.submission
        && now >= sub.deadline
    {
        if sub.reference.is_some() {
            go(s, fx, Screen::Saved);
        } else {
            s.session.problem = Some(Problem::NotSaved);
            go(s, fx, Screen::AskStaff);
        }
    }
}

/// Moves to `next`, starting, switching or stopping the camera as the screens require.
fn go(s: &mut FlowState, fx: &mut Vec<Effect>, next: Screen) {
    let before = s.screen.camera_mode();
    let after = next.camera_mode();
    if before != after {
        match after {
            Some(mode) => fx.push(Effect::StartCamera { mode, session: s.session_id }),
            None => fx.push(Effect::StopCamera),
        }
    }
    if s.screen != next {
        s.session.capture = Default::default();
        // A new screen gives the customer a full idle period to read it.
        s.session.last_input = s.now;
        s.session.idle_since = None;
    }
    s.screen = next;
}

/// Ends the session: every trace of the customer goes, the welcome screen returns.
fn wipe(s: &mut FlowState, fx: &mut Vec<Effect>) {
    if s.screen.camera_mode().is_some() {
        fx.push(Effect::StopCamera);
    }
    fx.push(Effect::WipeSession);
    if s.language() != s.config.language {
        fx.push(Effect::SetLanguage(s.config.language));
    }
    s.session = Session { last_input: s.now, ..Session::default() };
    s.session_id += 1;
    s.screen = Screen::Welcome;
}

fn back(s: &mut FlowState, fx: &mut Vec<Effect>) {
    match s.screen {
        // The session holds only the language choice here; going back ends it, so the next customer starts clean.
        Screen::Consent => wipe(s, fx),
        Screen::DocumentFront => go(s, fx, Screen::Consent),
        Screen::DocumentBack => {
            drop_capture(s, fx, CaptureTarget::DocumentFront);
            go(s, fx, Screen::DocumentFront);
        }
        Screen::Face => {
            drop_capture(s, fx, CaptureTarget::DocumentBack);
            go(s, fx, Screen::DocumentBack);
        }
        Screen::Review => {
            drop_capture(s, fx, CaptureTarget::Face);
            go(s, fx, Screen::Face);
        }
        Screen::Contact => go(s, fx, Screen::Review),
        Screen::Welcome | Screen::Submitting | Screen::Result | Screen::Retry | Screen::Saved | Screen::AskStaff => {}
    }
}

fn request_capture(s: &mut FlowState, fx: &mut Vec<Effect>, target: CaptureTarget) {
    s.session.capture.capturing = true;
    s.session.capture.countdown_since = None;
    fx.push(Effect::Capture { target, session: s.session_id });
}

fn drop_capture(s: &mut FlowState, fx: &mut Vec<Effect>, target: CaptureTarget) {
    if let Some(i) = s.session.held.iter().position(|t| *t == target) {
        s.session.held.remove(i);
        fx.push(Effect::Drop(target));
    }
}

fn all_held(session: &Session) -> bool {
    CaptureTarget::ALL.iter().all(|t| session.held.contains(t))
}

/// The first photo still missing, else the review.
fn next_capture_screen(session: &Session) -> Screen {
    CaptureTarget::ALL
        .into_iter()
        .find(|t| !session.held.contains(t))
        .map(CaptureTarget::screen)
        .unwrap_or(Screen::Review)
}

fn leave_field(session: &mut Session, field: Field) {
    let c = &mut session.contact;
    match field {
        Field::Email => c.email_touched |= !c.email.is_empty(),
        Field::Phone => c.phone_touched |= !c.phone.is_empty(),
    }
}

fn type_key(session: &mut Session, key: Key) {
    let c = &mut session.contact;
    let (text, max) = match c.focus {
        Field::Email => (&mut c.email, MAX_EMAIL_CHARS),
        Field::Phone => (&mut c.phone, MAX_PHONE_CHARS),
    };
    match key {
        Key::Text(t) => {
            for ch in t.chars().filter(|ch| !ch.is_control()) {
                if text.chars().count() >= max {
                    break;
                }
                text.push(ch);
            }
        }
        Key::Backspace => {
            text.pop();
        }
        Key::Clear => text.clear(),
    }
}

fn submit(s: &mut FlowState, fx: &mut Vec<Effect>) {
    let c = &mut s.session.contact;
    c.email_touched = true;
    c.phone_touched = true;
    let Some((email, phone)) = c.parsed() else {
        // Put the keyboard on the first field that needs fixing.
        if !matches!(c.email_validity(), Validity::Valid) {
            c.focus = Field::Email;
        } else {
            c.focus = Field::Phone;
        }
        return;
    };
    if !all_held(&s.session) {
        let next = next_capture_screen(&s.session);
        go(s, fx, next);
        return;
    }
    s.session.attempts += 1;
    s.session.problem = None;
    s.session.submission =
        Some(Submission { reference: None, deadline: s.now + s.config.submit_deadline, progress: (0, 0) });
    fx.push(Effect::Enqueue { session: s.session_id, email, phone, supersedes: s.session.supersedes.take() });
    go(s, fx, Screen::Submitting);
}

/// Shows the prompt for `code`, or "ask staff" when the customer cannot fix it or has no attempts left.
fn route_error(s: &mut FlowState, fx: &mut Vec<Effect>, code: crate::api::ErrorCode, reference: String) {
    match code.prompt().action {
        RetryAction::Wait => {
            s.session.problem = Some(Problem::Code(code));
            go(s, fx, Screen::Saved);
        }
        RetryAction::AskStaff => {
            s.session.problem = Some(Problem::Code(code));
            go(s, fx, Screen::AskStaff);
        }
        RetryAction::RetakeFace | RetryAction::RetakeDocument | RetryAction::EditContact | RetryAction::StartAgain => {
            if s.session.attempts >= s.config.max_attempts {
                s.session.problem = Some(Problem::AttemptsExhausted(code));
                go(s, fx, Screen::AskStaff);
            } else {
                s.session.problem = Some(Problem::Code(code));
                s.session.supersedes = Some(reference);
                go(s, fx, Screen::Retry);
            }
        }
    }
}

/// The retry screen's action button: back to the step that fixes the problem.
fn retry(s: &mut FlowState, fx: &mut Vec<Effect>) {
    let Some(code) = s.session.problem.and_then(Problem::code) else {
        go(s, fx, Screen::AskStaff);
        return;
    };
    s.session.problem = None;
    s.session.submission = None;
    match code.prompt().action {
        RetryAction::RetakeFace => {
            drop_capture(s, fx, CaptureTarget::Face);
            go(s, fx, Screen::Face);
        }
        RetryAction::RetakeDocument => {
            drop_capture(s, fx, CaptureTarget::DocumentFront);
            drop_capture(s, fx, CaptureTarget::DocumentBack);
            go(s, fx, Screen::DocumentFront);
        }
        RetryAction::StartAgain => {
            for t in CaptureTarget::ALL {
                drop_capture(s, fx, t);
            }
            go(s, fx, Screen::DocumentFront);
        }
        RetryAction::EditContact => {
            s.session.contact.focus = Field::Email;
            go(s, fx, Screen::Contact);
        }
        RetryAction::AskStaff | RetryAction::Wait => {
            s.session.problem = Some(Problem::Code(code));
            go(s, fx, Screen::AskStaff);
        }
    }
}
