//! The customer's enrollment flow as a pure state machine: [`step`] takes the current [`FlowState`] and one
//! [`Event`] and returns the next state and the [`Effect`]s the glue must carry out. No I/O, no Slint, no clock:
//! time arrives in [`Event::Tick`]. Runs on the UI thread (called by `crate::view`), and in plain unit tests.
//!
//! Screens, in order: welcome (language, start) -> consent -> document front -> document back -> face -> review
//! -> contact details -> submitting -> result. Off the main path: a retry prompt for every [`ErrorCode`] (its action
//! leads back to the step that fixes it), "saved, will be sent" for offline or slow networks, "please ask a member of
//! staff" (fatal codes, attempts exhausted, nothing saved), and the idle overlay whose expiry wipes the session.
//!
//! All data of one customer lives in [`Session`]; a wipe replaces it with `Session::default()` and tells the glue to
//! drop every image it holds ([`Effect::WipeSession`]). Only the kiosk-wide status (online, queue length) and the
//! clock survive a wipe.

mod config;
pub mod staff;
mod step;

pub use config::FlowConfig;
pub use step::step;

use crate::api::ErrorCode;
use crate::contact::{ContactError, Email, Phone};
use std::time::Duration;

/// The languages the kiosk speaks. English is the source language of every string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    /// English (the strings in the `.slint` files).
    #[default]
    English,
    /// French (`ui/translations/fr`).
    French,
}

impl Language {
    /// Every language, in the order the welcome screen offers them.
    pub const ALL: [Language; 2] = [Language::English, Language::French];

    /// The locale code: the folder name under `ui/translations/` (`en` is the built-in source language).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::French => "fr",
        }
    }

    /// Parses a locale code (`en`, `fr`; a region such as `fr_FR` or `en-GB` is ignored).
    pub fn parse(s: &str) -> Option<Language> {
        let base = s.split(['_', '-', '.']).next().unwrap_or("").to_ascii_lowercase();
        Language::ALL.into_iter().find(|l| l.code() == base)
    }
}

/// Which screen the customer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    /// Language choice and the start button. Holds nothing of any customer.
    Welcome,
    /// The privacy notice and the consent buttons.
    Consent,
    /// Live preview with the card guide: the front of the ID document.
    DocumentFront,
    /// Live preview with the card guide: the back of the ID document.
    DocumentBack,
    /// Live preview with the oval guide and the auto-capture countdown.
    Face,
    /// The three photos with retake buttons.
    Review,
    /// Email and phone on the on-screen keyboard, validated as typed.
    Contact,
    /// Progress while the application is saved and sent, bounded by the submit deadline.
    Submitting,
    /// Accepted: the reference code.
    Result,
    /// A customer-fixable error with its retry action ([`Session::problem`] says which).
    Retry,
    /// Saved on the kiosk, sent when the connection is back, with the reference code.
    Saved,
    /// Nothing the customer can do: please ask a member of staff ([`Session::problem`] says why).
    AskStaff,
}

impl Screen {
    /// Whether the camera runs on this screen, and in which mode.
    pub fn camera_mode(self) -> Option<CameraMode> {
        match self {
            Screen::DocumentFront | Screen::DocumentBack => Some(CameraMode::Document),
            Screen::Face => Some(CameraMode::Face),
            _ => None,
        }
    }

    /// The capture taken on this screen.
    pub fn capture_target(self) -> Option<CaptureTarget> {
        match self {
            Screen::DocumentFront => Some(CaptureTarget::DocumentFront),
            Screen::DocumentBack => Some(CaptureTarget::DocumentBack),
            Screen::Face => Some(CaptureTarget::Face),
            _ => None,
        }
    }

    /// Whether the idle timeout applies here: everywhere a customer may have walked away, but not on the welcome
    /// screen (nobody there) and not while submitting (the submit deadline bounds that screen).
    pub fn idle_applies(self) -> bool {
        !matches!(self, Screen::Welcome | Screen::Submitting)
    }
}

/// How the camera and the quality checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CameraMode {
    /// An ID card inside the card guide.
    Document,
    /// A face inside the oval guide.
    Face,
}

/// One of the photos of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureTarget {
    /// Front of the ID document.
    DocumentFront,
    /// Back of the ID document.
    DocumentBack,
    /// The customer's face.
    Face,
}

impl CaptureTarget {
    /// Every target, in the order they are taken.
    pub const ALL: [CaptureTarget; 3] =
        [CaptureTarget::DocumentFront, CaptureTarget::DocumentBack, CaptureTarget::Face];

    /// The screen that takes this photo.
    pub fn screen(self) -> Screen {
        match self {
            CaptureTarget::DocumentFront => Screen::DocumentFront,
            CaptureTarget::DocumentBack => Screen::DocumentBack,
            CaptureTarget::Face => Screen::Face,
        }
    }
}

/// A contact field on the contact screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Field {
    /// The email address (the keyboard shows the email layout).
    #[default]
    Email,
    /// The phone number with its country code (the keyboard shows the phone layout).
    Phone,
}

/// A key of the on-screen keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Insert this text (one character or a shortcut such as `.com`).
    Text(String),
    /// Delete the last character.
    Backspace,
    /// Empty the field.
    Clear,
}

/// Why the customer sees the retry or the ask-staff screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The API (or the uploader) reported this code.
    Code(ErrorCode),
    /// The code would let the customer retry, but the attempts are used up.
    AttemptsExhausted(ErrorCode),
    /// The application could not be saved on the kiosk: nothing was queued.
    NotSaved,
    /// The camera stopped being available during the captures: nothing was saved, staff must look at the kiosk.
    CameraUnavailable,
}

impl Problem {
    /// The error code behind the problem, if any.
    pub fn code(self) -> Option<ErrorCode> {
        match self {
            Problem::Code(c) | Problem::AttemptsExhausted(c) => Some(c),
            Problem::NotSaved | Problem::CameraUnavailable => None,
        }
    }
}

/// The state of one contact field as the customer types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// Nothing typed yet, or not finished and the customer has not left the field.
    Pending,
    /// Valid.
    Valid,
    /// Invalid, shown under the field.
    Invalid(ContactError),
}

/// The contact details being typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactDraft {
    /// The email text as typed.
    pub email: String,
    /// The phone text as typed.
    pub phone: String,
    /// The field the keyboard types into.
    pub focus: Field,
    /// The customer left the email field or tried to continue: errors are shown.
    pub email_touched: bool,
    /// The customer left the phone field or tried to continue: errors are shown.
    pub phone_touched: bool,
}

impl ContactDraft {
    /// The email's state as shown under the field.
    pub fn email_validity(&self) -> Validity {
        validity(Email::parse(&self.email).map(|_| ()), self.email_touched)
    }

    /// The phone's state as shown under the field.
    pub fn phone_validity(&self) -> Validity {
        validity(Phone::parse(&self.phone).map(|_| ()), self.phone_touched)
    }

    /// Both fields parse.
    pub fn parsed(&self) -> Option<(Email, Phone)> {
        Some((Email::parse(&self.email).ok()?, Phone::parse(&self.phone).ok()?))
    }
}

fn validity(r: Result<(), ContactError>, touched: bool) -> Validity {
    match r {
        Ok(()) => Validity::Valid,
        Err(e) if touched => Validity::Invalid(e),
        Err(_) => Validity::Pending,
    }
}

/// Live guidance on a capture screen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaptureProgress {
    /// The latest hint's stable code (e.g. `move_closer`), shown over the preview.
    pub hint: Option<String>,
    /// When the face countdown started (face screen only); a bad frame cancels it.
    pub countdown_since: Option<Duration>,
    /// A capture was requested and its result has not arrived: further verdicts are ignored.
    pub capturing: bool,
}

/// The application being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The reference code, once the queue has committed the application.
    pub reference: Option<String>,
    /// When the submitting screen gives way to "saved, will be sent" (or to "ask staff" if nothing was saved).
    pub deadline: Duration,
    /// Steps done and total, from the uploader.
    pub progress: (u8, u8),
}

/// Everything of one customer. A wipe replaces it with the default: nothing survives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// The language the customer chose (None: the configured default).
    pub language: Option<Language>,
    /// The customer accepted the privacy notice.
    pub consent: bool,
    /// Which photos the glue holds for this session.
    pub held: Vec<CaptureTarget>,
    /// Guidance on the current capture screen.
    pub capture: CaptureProgress,
    /// The contact details.
    pub contact: ContactDraft,
    /// Applications submitted in this session (the attempts counted against `max_attempts`).
    pub attempts: u32,
    /// The application being (or last) sent.
    pub submission: Option<Submission>,
    /// The reference of an earlier attempt that the next submission replaces.
    pub supersedes: Option<String>,
    /// Why the retry or ask-staff screen is shown.
    pub problem: Option<Problem>,
    /// When the last customer input happened.
    pub last_input: Duration,
    /// When the "Are you still there?" countdown started.
    pub idle_since: Option<Duration>,
}

/// The kiosk-wide status shown in the status bar. Not customer data: it survives a wipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KioskStatus {
    /// Whether the uploader last reached the API; `None` until it has reported.
    pub online: Option<bool>,
    /// Applications waiting to be sent.
    pub pending: u32,
}

/// The whole state of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowState {
    /// The timing and attempt policy.
    pub config: FlowConfig,
    /// The screen shown.
    pub screen: Screen,
    /// Counts sessions; effects and events that concern photos carry it so a late result of one session never
    /// lands in the next.
    pub session_id: u64,
    /// The current customer's data.
    pub session: Session,
    /// The status bar.
    pub status: KioskStatus,
    /// The latest time seen in a tick.
    pub now: Duration,
    /// Why the kiosk takes no customer at the moment, if it does not: the welcome screen says it is out of service
    /// and does not start a session. Kiosk-wide: it survives a wipe.
    pub out_of_service: OutOfService,
}

/// The kiosk's own faults that keep customers away. None of them is the customer's to fix: staff are told why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutOfService {
    /// The queue cannot save applications (its key is missing or wrong, or it does not answer).
    pub queue_locked: bool,
    /// No camera can be opened (none found, or it fails to open); the kiosk checks again and recovers by itself.
    pub camera_unavailable: bool,
}

impl OutOfService {
    /// True when any fault keeps customers away.
    pub fn any(self) -> bool {
        self.queue_locked || self.camera_unavailable
    }
}

impl FlowState {
    /// The welcome screen with an empty session.
    pub fn new(config: FlowConfig) -> FlowState {
        FlowState {
            config,
            screen: Screen::Welcome,
            session_id: 1,
            session: Session::default(),
            status: KioskStatus::default(),
            now: Duration::ZERO,
            out_of_service: OutOfService::default(),
        }
    }

    /// The language in force: the customer's choice, else the configured default.
    pub fn language(&self) -> Language {
        self.session.language.unwrap_or(self.config.language)
    }

    /// Seconds left on the face countdown, if it runs (rounded up, so it shows 3, 2, 1).
    pub fn face_countdown_left(&self) -> Option<u64> {
        let since = self.session.capture.countdown_since?;
        let left = (since + self.config.face_countdown).saturating_sub(self.now);
        Some(left.as_millis().div_ceil(1000) as u64)
    }

    /// Seconds left before an idle session is wiped, while the idle overlay is shown.
    pub fn idle_left(&self) -> Option<u64> {
        let since = self.session.idle_since?;
        let left = (since + self.config.idle_countdown).saturating_sub(self.now);
        Some(left.as_millis().div_ceil(1000) as u64)
    }

    /// The reference code of this session's application, once saved.
    pub fn reference(&self) -> Option<&str> {
        self.session.submission.as_ref()?.reference.as_deref()
    }

    /// Attempts left before "please ask a member of staff".
    pub fn attempts_left(&self) -> u32 {
        self.config.max_attempts.saturating_sub(self.session.attempts)
    }
}

/// Something that happened: a customer input, a worker's report, or the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The clock (monotonic, from the start of the kiosk).
    Tick {
        /// Time since the kiosk started.
        now: Duration,
    },
    /// Welcome: the customer picked a language.
    SelectLanguage(Language),
    /// Welcome: start an application.
    Start,
    /// Consent: the customer accepts the privacy notice.
    Accept,
    /// Consent: the customer declines (the session ends).
    Decline,
    /// Go back one screen (capture screens, review, contact).
    Back,
    /// End the session now (the "cancel" or "done" button).
    Finish,
    /// A quality check on a preview frame: the capture screen's live guidance.
    Verdict {
        /// The session the check ran for.
        session: u64,
        /// The frame passes every check (auto-capture may fire).
        ready: bool,
        /// The most useful hint's stable code, if any.
        hint: Option<String>,
    },
    /// The customer pressed the capture button (the checks still run on the captured frame).
    ManualCapture,
    /// A requested capture was checked, encoded and is held by the glue.
    Captured {
        /// The session it was requested for.
        session: u64,
        /// Which photo.
        target: CaptureTarget,
    },
    /// A requested capture failed its checks or its encoding; the hint says why.
    CaptureRejected {
        /// The session it was requested for.
        session: u64,
        /// Which photo.
        target: CaptureTarget,
        /// Why, as a hint code.
        hint: Option<String>,
    },
    /// Review: take this photo again.
    Retake(CaptureTarget),
    /// Review: the photos are fine.
    ConfirmPhotos,
    /// Contact: the keyboard types into this field.
    Focus(Field),
    /// Contact: a key of the on-screen keyboard.
    Key(Key),
    /// Contact: send the application.
    Submit,
    /// The queue committed this session's application under this reference.
    Saved {
        /// The session the application belongs to.
        session: u64,
        /// The reference code.
        reference: String,
    },
    /// The queue could not save this session's application.
    SaveFailed {
        /// The session the application belongs to.
        session: u64,
    },
    /// The uploader finished a step of an application.
    Progress {
        /// The application's reference.
        reference: String,
        /// Steps done.
        done: u8,
        /// Steps in all.
        total: u8,
    },
    /// The API accepted an application.
    Accepted {
        /// The application's reference.
        reference: String,
    },
    /// An application stopped on an error (the customer must act, or it failed for good).
    Rejected {
        /// The application's reference.
        reference: String,
        /// Why.
        code: ErrorCode,
    },
    /// The uploader's view of the network and the queue changed.
    Status(KioskStatus),
    /// The queue became unable to save applications (true) or able again (false).
    QueueLocked(bool),
    /// The camera became available (true: it opens) or unavailable (false: none found, or it does not open).
    CameraAvailable(bool),
    /// Retry screen: the customer pressed the action button.
    RetryAction,
    /// Idle overlay: "I'm still here".
    StillHere,
}

impl Event {
    /// Whether this event is the customer touching the screen (it resets the idle timer).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Event::SelectLanguage(_)
                | Event::Start
                | Event::Accept
                | Event::Decline
                | Event::Back
                | Event::Finish
                | Event::ManualCapture
                | Event::Retake(_)
                | Event::ConfirmPhotos
                | Event::Focus(_)
                | Event::Key(_)
                | Event::Submit
                | Event::RetryAction
                | Event::StillHere
        )
    }
}

/// An intent for the glue. The glue carries effects out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start (or switch) the camera and its quality checks in this mode; verdicts come back as
    /// [`Event::Verdict`] tagged with `session`.
    StartCamera {
        /// Document or face.
        mode: CameraMode,
        /// The session the verdicts belong to.
        session: u64,
    },
    /// Stop the camera (no capture screen is shown).
    StopCamera,
    /// Take the best recent frame for `target`, check it, encode it and hold it in memory; answer with
    /// [`Event::Captured`] or [`Event::CaptureRejected`].
    Capture {
        /// Which photo.
        target: CaptureTarget,
        /// The session it is for.
        session: u64,
    },
    /// Drop a held photo (retake, or a late capture that no longer belongs on screen).
    Drop(CaptureTarget),
    /// Save the held photos and these contact details in the durable queue, then send them; answer with
    /// [`Event::Saved`] or [`Event::SaveFailed`].
    Enqueue {
        /// The session the photos belong to.
        session: u64,
        /// The applicant's email.
        email: Email,
        /// The applicant's phone.
        phone: Phone,
        /// An earlier attempt of this session that this one replaces (after a retry prompt).
        supersedes: Option<String>,
    },
    /// Switch the UI's language.
    SetLanguage(Language),
    /// Drop everything of the session: held photos, preview frames, anything typed.
    WipeSession,
}

#[cfg(test)]
mod tests;
