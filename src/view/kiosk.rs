//! The customer window's glue: Slint callbacks become flow events, the flow's state is written to the `Kiosk`
//! global, and the flow's effects are carried out through [`Services`]. The staff entry (the PIN pad and the
//! operator console over the welcome screen, [`crate::flow::staff`]) runs beside the flow once
//! [`KioskView::enable_staff`] gives it a PIN policy and the console's API. Everything here runs on the UI thread;
//! workers reach it only through the [`Mailbox`].

use super::console::{ConsoleReport, OperatorApi};
use super::operator::{OperatorView, SharedServices};
use super::services::{Mailbox, Report, Services};
use super::staff_lock::StaffLockFile;
use super::ui::{self, AppWindow, Kiosk};
use crate::api::ErrorClass;
use crate::contact::ContactError;
use crate::flow::staff::{self, LockRecord, PinNotice, StaffConfig, StaffEffect, StaffEvent, StaffScreen, StaffState};
use crate::flow::{self, CaptureTarget, Effect, Event, Field, FlowConfig, FlowState, Key, Language, Problem, Validity};
use slint::{ComponentHandle, Image, SharedString};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// The view whose mailbox the event loop drains when a worker wakes it (one customer window per process).
    static ACTIVE: RefCell<Weak<KioskView>> = const { RefCell::new(Weak::new()) };
}

/// A wake function for [`Mailbox::new`]: schedules a drain of the active view's mailbox on the UI thread.
/// Without a running event loop (headless tests) it does nothing; the caller drains with [`KioskView::pump`].
pub fn event_loop_wake() -> impl Fn() + Send + Sync + 'static {
    || {
        let _ = slint::invoke_from_event_loop(|| {
            if let Some(view) = ACTIVE.with(|a| a.borrow().upgrade()) {
                view.pump();
            }
        });
    }
}

/// The customer window and its flow.
pub struct KioskView {
    app: AppWindow,
    state: RefCell<FlowState>,
    services: SharedServices,
    mailbox: Arc<Mailbox>,
    staff: RefCell<StaffState>,
    console: RefCell<Option<Rc<OperatorView<AppWindow>>>>,
    /// Where the PIN's wrong-try count and lock are kept across restarts (none: in memory only).
    staff_lock: RefCell<Option<StaffLockFile>>,
    /// When the camera was last asked to start, until its first frame is shown (for the start-up log line).
    camera_asked: Cell<Option<Instant>>,
    /// When to check the connection next (kiosk clock), while the status bar does not know it is online.
    next_probe: Cell<Duration>,
}

/// While the status bar does not show "Online", the kiosk checks the connection this often (the uploader reports it
/// only while it has something to send, so an idle kiosk would otherwise never know).
const PROBE_INTERVAL: Duration = Duration::from_secs(120);

impl KioskView {
    /// Wires `app` to a new flow. `mailbox` must be the one `services` posts to.
    pub fn new(
        app: AppWindow,
        config: FlowConfig,
        services: Box<dyn Services>,
        mailbox: Arc<Mailbox>,
    ) -> Rc<KioskView> {
        let staff = StaffState::new(StaffConfig::new(None, config.idle_timeout + config.idle_countdown));
        let view = Rc::new(KioskView {
            app,
            state: RefCell::new(FlowState::new(config)),
            services: Rc::new(RefCell::new(services)),
            mailbox,
            staff: RefCell::new(staff),
            console: RefCell::new(None),
            staff_lock: RefCell::new(None),
            camera_asked: Cell::new(None),
            next_probe: Cell::new(Duration::ZERO),
        });
        view.wire();
        let k = view.app.global::<Kiosk>();
        k.set_demo(view.services.borrow().is_demo());
        if config.language != Language::English {
            select_language(config.language);
        }
        view.render();
        view
    }

    /// Offers the operator console behind the staff PIN (`staff.pin`; without one the welcome screen offers no staff
    /// button), with `api` for its requests and connection pages. The console shares this view's services. `lock`
    /// keeps the PIN's wrong-try count and lock across restarts; a record that cannot be read starts the pad locked.
    pub fn enable_staff(self: &Rc<Self>, policy: StaffConfig, api: Box<dyn OperatorApi>, lock: Option<StaffLockFile>) {
        let console = OperatorView::new(self.app.clone_strong(), self.services.clone(), api);
        let w = Rc::downgrade(self);
        console.on_guard(move |action| {
            if let Some(v) = w.upgrade() {
                v.staff_event(StaffEvent::Guard(action));
            }
        });
        let w = Rc::downgrade(self);
        console.on_touch(move || {
            if let Some(v) = w.upgrade() {
                v.staff_event(StaffEvent::Touch);
            }
        });
        let w = Rc::downgrade(self);
        console.on_exit(
            move || {
                if let Some(v) = w.upgrade() {
                    v.staff_event(StaffEvent::Exit);
                }
            },
            true,
        );
        *self.console.borrow_mut() = Some(console);
        let now = self.state.borrow().now;
        let record = match lock.as_ref().map(StaffLockFile::load) {
            None => LockRecord::default(),
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                log::error!("{e}: the staff PIN pad starts locked");
                LockRecord { failures: 0, lockouts: 1, locked_for: policy.lockout }
            }
        };
        if record.locked_for > Duration::ZERO {
            log::warn!(
                "the staff PIN pad is locked for {} s more (too many wrong PINs before the restart)",
                record.locked_for.as_secs()
            );
        }
        *self.staff.borrow_mut() = staff::step(&StaffState::new(policy), StaffEvent::Tick { now }).0.restored(record);
        *self.staff_lock.borrow_mut() = lock;
        self.render();
    }

    /// The staff entry's state (tests).
    pub fn staff(&self) -> StaffState {
        self.staff.borrow().clone()
    }

    /// Feeds one event to the staff entry and carries out its effects.
    fn staff_event(&self, event: StaffEvent) {
        if event == StaffEvent::Open && self.state.borrow().screen != flow::Screen::Welcome {
            // Only over the welcome screen: nothing of a customer is ever behind the console.
            return;
        }
        let (next, effects) = staff::step(&self.staff.borrow(), event);
        *self.staff.borrow_mut() = next;
        let console = self.console.borrow().clone();
        for e in effects {
            match (e, &console) {
                (StaffEffect::ConsoleOpened, Some(c)) => c.open(),
                (StaffEffect::ConsoleClosed, Some(c)) => c.close(),
                (StaffEffect::Authorised(action), Some(c)) => c.perform(action),
                (StaffEffect::LockChanged, _) => {
                    let record = self.staff.borrow().lock_record();
                    if let Some(f) = self.staff_lock.borrow().as_ref()
                        && let Err(e) = f.save(&record)
                    {
                        log::error!("cannot keep the staff PIN lock in {}: {e}", f.path().display());
                    }
                    if record.locked_for > Duration::ZERO {
                        log::warn!("staff PIN pad locked for {} s after wrong PINs", record.locked_for.as_secs());
                    }
                }
                (_, None) => {}
            }
        }
        self.render_staff();
    }

    /// Makes this view the one [`event_loop_wake`] drains.
    pub fn make_active(self: &Rc<Self>) {
        ACTIVE.with(|a| *a.borrow_mut() = Rc::downgrade(self));
    }

    /// The window.
    pub fn app(&self) -> &AppWindow {
        &self.app
    }

    /// The mailbox this view drains (workers and the console's API post to it).
    pub fn mailbox(&self) -> Arc<Mailbox> {
        self.mailbox.clone()
    }

    /// A copy of the flow's state.
    pub fn state(&self) -> FlowState {
        self.state.borrow().clone()
    }

    /// Feeds one event to the flow, carries out its effects and shows the new state.
    pub fn handle(&self, event: Event) {
        let (next, effects) = {
            let s = self.state.borrow();
            flow::step(&s, event)
        };
        let before = self.state.borrow().screen;
        if next.screen != before {
            // The screen's name only, never what the customer typed: support reads the path a customer took, and
            // the real-window test follows it.
            log::info!("kiosk: screen {:?} (session {})", next.screen, next.session_id);
        }
        *self.state.borrow_mut() = next;
        for e in effects {
            self.execute(e);
        }
        self.render();
    }

    /// The clock: `now` is the time since the kiosk started.
    pub fn tick(&self, now: Duration) {
        self.pump();
        self.handle(Event::Tick { now });
        self.staff_event(StaffEvent::Tick { now });
        if now >= self.next_probe.get() && self.state.borrow().status.online != Some(true) {
            self.next_probe.set(now + PROBE_INTERVAL);
            if let Some(c) = self.console.borrow().as_ref() {
                c.probe_connection();
            }
        }
    }

    /// Drains the mailbox: shows the latest preview frame, then handles the reports in order.
    pub fn pump(&self) {
        let (frame, reports) = self.mailbox.take();
        if let Some(frame) = frame {
            let s = self.state.borrow();
            if frame.session == s.session_id && s.screen.camera_mode().is_some() {
                let k = self.app.global::<Kiosk>();
                // The only place a frame becomes an image: on the UI thread, without decoding (raw RGB).
                k.set_preview(Image::from_rgb8(frame.pixels));
                k.set_preview_live(true);
                if let Some(asked) = self.camera_asked.take() {
                    log_first_frame(asked);
                }
            }
        }
        let console = self.console.borrow().clone();
        if let Some(frame) = self.mailbox.take_console_frame()
            && let Some(c) = &console
        {
            c.show_frame(frame);
        }
        for r in reports {
            match r {
                Report::Event(e) => self.handle(e),
                Report::Console(c) => {
                    if let ConsoleReport::Connection(result) = &c {
                        // A connection check (the operator's or the kiosk's own) tells the status bar too: the API
                        // answered, or at least the network reached it (an API error other than a network one).
                        let mut status = self.state.borrow().status;
                        status.online = Some(match result {
                            Ok(_) => true,
                            Err(f) => f.code.prompt().class != ErrorClass::Transient,
                        });
                        self.handle(Event::Status(status));
                    }
                    if let Some(view) = &console {
                        view.report(c);
                    }
                }
                Report::QueueLocked(lock) => {
                    if let Some(c) = &console {
                        c.show_queue_lock(lock);
                    }
                    self.handle(Event::QueueLocked(lock.is_some()));
                }
                Report::CameraStatus(reason) => {
                    // Staff see why; the flow only whether a customer can start.
                    self.app.global::<Kiosk>().set_out_of_service_detail(reason.clone().unwrap_or_default().into());
                    let available = reason.is_none();
                    if let Some(c) = &console {
                        c.show_camera_unavailable(reason);
                    }
                    self.handle(Event::CameraAvailable(available));
                }
                Report::Thumbnail { session, target, pixels } => {
                    if session == self.state.borrow().session_id {
                        self.set_photo(target, Image::from_rgb8(pixels));
                    }
                }
            }
        }
    }

    fn execute(&self, effect: Effect) {
        let k = self.app.global::<Kiosk>();
        match effect {
            Effect::StartCamera { mode, session } => {
                k.set_preview(Image::default());
                k.set_preview_live(false);
                self.camera_asked.set(Some(Instant::now()));
                self.services.borrow_mut().start_camera(mode, session);
            }
            Effect::StopCamera => {
                self.camera_asked.set(None);
                self.services.borrow_mut().stop_camera();
                k.set_preview(Image::default());
                k.set_preview_live(false);
            }
            Effect::Capture { target, session } => self.services.borrow_mut().capture(target, session),
            Effect::Drop(target) => {
                self.services.borrow_mut().drop_capture(target);
                self.set_photo(target, Image::default());
            }
            Effect::Enqueue { session, email, phone, supersedes } => {
                self.services.borrow_mut().enqueue(session, email, phone, supersedes)
            }
            Effect::SetLanguage(lang) => select_language(lang),
            Effect::WipeSession => {
                self.services.borrow_mut().wipe();
                // Reports still waiting belong to the session that just ended; status reports come again.
                self.mailbox.clear();
                self.camera_asked.set(None);
                k.set_preview(Image::default());
                k.set_preview_live(false);
                for t in CaptureTarget::ALL {
                    self.set_photo(t, Image::default());
                }
            }
        }
    }

    fn set_photo(&self, target: CaptureTarget, image: Image) {
        let k = self.app.global::<Kiosk>();
        match target {
            CaptureTarget::DocumentFront => k.set_front_photo(image),
            CaptureTarget::DocumentBack => k.set_back_photo(image),
            CaptureTarget::Face => k.set_face_photo(image),
        }
    }

    /// Writes the flow's state to the `Kiosk` global.
    fn render(&self) {
        let s = self.state.borrow();
        let k = self.app.global::<Kiosk>();
        let session = &s.session;
        k.set_screen(ui_screen(s.screen));
        k.set_language(s.language().code().into());
        k.set_online(s.status.online == Some(true));
        k.set_connection_known(s.status.online.is_some());
        k.set_pending(clamp_i32(s.status.pending));
        k.set_hint(session.capture.hint.clone().unwrap_or_default().into());
        k.set_countdown(s.face_countdown_left().map_or(-1, clamp_i32));
        k.set_capturing(session.capture.capturing);
        let c = &session.contact;
        k.set_email(c.email.as_str().into());
        k.set_phone(c.phone.as_str().into());
        k.set_focus(match c.focus {
            Field::Email => ui::Field::Email,
            Field::Phone => ui::Field::Phone,
        });
        let (state, error) = field_state(c.email_validity());
        k.set_email_state(state);
        k.set_email_error(error);
        let (state, error) = field_state(c.phone_validity());
        k.set_phone_state(state);
        k.set_phone_error(error);
        k.set_can_submit(c.parsed().is_some());
        let (done, total) = session.submission.as_ref().map_or((0, 0), |s| s.progress);
        k.set_progress_done(done.into());
        k.set_progress_total(total.into());
        k.set_reference(s.reference().unwrap_or_default().into());
        let code = session.problem.and_then(Problem::code);
        k.set_problem(code.map_or("", |c| c.as_str()).into());
        k.set_retry_action(code.map_or("", |c| c.prompt().action.as_str()).into());
        k.set_attempts_exhausted(matches!(session.problem, Some(Problem::AttemptsExhausted(_))));
        k.set_not_saved(session.problem == Some(Problem::NotSaved));
        k.set_attempts_left(clamp_i32(s.attempts_left()));
        k.set_idle_left(s.idle_left().map_or(-1, clamp_i32));
        k.set_queue_locked(s.out_of_service.queue_locked);
        k.set_camera_unavailable(s.out_of_service.camera_unavailable);
        k.set_camera_lost(session.problem == Some(Problem::CameraUnavailable));
        k.set_demo(self.services.borrow().is_demo());
        drop(s);
        self.render_staff();
    }

    /// Writes the staff entry's state to the `Kiosk` global.
    fn render_staff(&self) {
        let st = self.staff.borrow();
        let k = self.app.global::<Kiosk>();
        k.set_staff_available(st.available() && self.console.borrow().is_some());
        k.set_staff(match st.screen {
            StaffScreen::Closed => ui::StaffView::Closed,
            StaffScreen::Pin => ui::StaffView::Pin,
            StaffScreen::Console => ui::StaffView::Console,
            StaffScreen::Confirm => ui::StaffView::Confirm,
        });
        let (purpose, target) = st.pending().map_or(("", ""), |a| (a.code(), a.target()));
        k.set_pin_purpose(purpose.into());
        k.set_pin_purpose_arg(target.into());
        k.set_pin_typed(clamp_i32(st.typed_len()));
        let (wrong, tries, locked) = match st.notice() {
            PinNotice::None => (false, 0, 0),
            PinNotice::Wrong { tries_left } => (true, tries_left, 0),
            PinNotice::Locked { seconds } => (false, 0, seconds),
        };
        k.set_pin_wrong(wrong);
        k.set_pin_tries_left(clamp_i32(tries));
        k.set_pin_locked_seconds(clamp_i32(locked));
    }

    fn wire(self: &Rc<Self>) {
        let k = self.app.global::<Kiosk>();
        let w = Rc::downgrade(self);
        let send = move |e: Event| {
            if let Some(v) = w.upgrade() {
                v.handle(e);
            }
        };
        macro_rules! on {
            ($setter:ident, $event:expr) => {{
                let send = send.clone();
                k.$setter(move || send($event));
            }};
        }
        on!(on_start, Event::Start);
        on!(on_accept_privacy, Event::Accept);
        on!(on_decline_privacy, Event::Decline);
        on!(on_go_back, Event::Back);
        on!(on_finish, Event::Finish);
        on!(on_capture_now, Event::ManualCapture);
        on!(on_confirm_photos, Event::ConfirmPhotos);
        on!(on_erase, Event::Key(Key::Backspace));
        on!(on_clear_field, Event::Key(Key::Clear));
        on!(on_submit, Event::Submit);
        on!(on_retry, Event::RetryAction);
        on!(on_still_here, Event::StillHere);
        let s = send.clone();
        k.on_choose_language(move |code: SharedString| match Language::parse(&code) {
            Some(lang) => s(Event::SelectLanguage(lang)),
            None => log::warn!("the UI offered an unknown language: {code}"),
        });
        let s = send.clone();
        k.on_retake(move |kind| {
            s(Event::Retake(match kind {
                ui::CaptureKind::DocumentFront => CaptureTarget::DocumentFront,
                ui::CaptureKind::DocumentBack => CaptureTarget::DocumentBack,
                ui::CaptureKind::Face => CaptureTarget::Face,
            }))
        });
        let s = send.clone();
        k.on_focus_field(move |f| {
            s(Event::Focus(match f {
                ui::Field::Email => Field::Email,
                ui::Field::Phone => Field::Phone,
            }))
        });
        k.on_type_text(move |t: SharedString| send(Event::Key(Key::Text(t.to_string()))));
        let w = Rc::downgrade(self);
        let staff = move |e: StaffEvent| {
            if let Some(v) = w.upgrade() {
                v.staff_event(e);
            }
        };
        let s = staff.clone();
        k.on_open_staff(move || s(StaffEvent::Open));
        let s = staff.clone();
        k.on_pin_digit(move |d: i32| {
            if let Ok(d) = u8::try_from(d) {
                s(StaffEvent::Digit(d));
            }
        });
        let s = staff.clone();
        k.on_pin_erase(move || s(StaffEvent::Erase));
        let s = staff.clone();
        k.on_pin_enter(move || s(StaffEvent::Enter));
        k.on_pin_cancel(move || staff(StaffEvent::Cancel));
    }
}

/// Logs when the first preview frame of a camera start is on screen: the frame was just handed to the window,
/// which draws it at the end of this event-loop pass, so a zero-delay timer (run at the start of the next pass)
/// sees it drawn. Benchmarks read this line (`benches/kiosk_startup.sh`).
fn log_first_frame(asked: Instant) {
    slint::Timer::single_shot(Duration::ZERO, move || {
        log::info!(
            "preview: first frame on screen {} ms after the camera was asked to start",
            asked.elapsed().as_millis()
        );
    });
}

/// Switches the bundled translation; English is the source language.
fn select_language(lang: Language) {
    if let Err(e) = slint::select_bundled_translation(lang.code()) {
        log::error!("cannot switch the UI to {}: {e}", lang.code());
    }
}

fn ui_screen(s: flow::Screen) -> ui::Screen {
    use flow::Screen as F;
    use ui::Screen as U;
    match s {
        F::Welcome => U::Welcome,
        F::Consent => U::Consent,
        F::DocumentFront => U::DocumentFront,
        F::DocumentBack => U::DocumentBack,
        F::Face => U::Face,
        F::Review => U::Review,
        F::Contact => U::Contact,
        F::Submitting => U::Submitting,
        F::Result => U::Result,
        F::Retry => U::Retry,
        F::Saved => U::Saved,
        F::AskStaff => U::AskStaff,
    }
}

fn field_state(v: Validity) -> (ui::FieldState, SharedString) {
    match v {
        Validity::Pending => (ui::FieldState::Pending, SharedString::default()),
        Validity::Valid => (ui::FieldState::Valid, SharedString::default()),
        Validity::Invalid(e) => (ui::FieldState::Invalid, contact_error_code(&e).into()),
    }
}

/// The stable code the UI translates (`Texts.contact-error`).
pub fn contact_error_code(e: &ContactError) -> &'static str {
    match e {
        ContactError::EmailEmpty => "email_empty",
        ContactError::EmailInvalid => "email_invalid",
        ContactError::PhoneEmpty => "phone_empty",
        ContactError::PhoneCharacters => "phone_characters",
        ContactError::PhoneNoCountryCode => "phone_no_country_code",
        ContactError::PhoneLength => "phone_length",
    }
}

fn clamp_i32<T: TryInto<i32>>(v: T) -> i32 {
    v.try_into().unwrap_or(i32::MAX)
}
