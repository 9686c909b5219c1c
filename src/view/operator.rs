//! The operator console's glue, for the desktop window (`ekyc-kiosk operator`) and for the kiosk window behind the
//! staff PIN (any [`ConsoleHost`]): the queue page (state, age, attempts, last error, follow-up contact details;
//! retry and purge; the queue-locked and API-key-rejected alerts) over [`Services`], the requests page (pending and
//! accepted, accept, delete after a confirmation) and the connection test over [`OperatorApi`], and the camera page
//! (choice, live preview with the checks' measurements, the camera the kiosk uses) over [`Services`].
//!
//! UI thread only. Answers from the workers arrive as [`ConsoleReport`]s, handed over by whoever drains the
//! [`super::Mailbox`] ([`OperatorView::report`], [`OperatorView::show_frame`]).

use super::console::{ApiFailure, ConsoleReport, OperatorApi, RequestChange, RequestSummary};
use super::services::{QueueItem, QueueLock, Services};
use super::ui::{
    AppWindow, CameraChoice, ConnectionTest, ConsolePage, Kiosk, Metric, Operator, OperatorWindow, QueueRow, RequestRow,
};
use crate::flow::staff::Guarded;
use crate::queue::Acknowledgeable;
use slint::{ComponentHandle, Image, ModelRc, Rgb8Pixel, SharedPixelBuffer, SharedString, VecModel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// A window that shows the operator console (it has the `Operator` and `Kiosk` globals).
pub trait ConsoleHost: ComponentHandle + 'static {
    /// The console's global.
    fn operator(&self) -> Operator<'_>;
    /// The window's status bar global.
    fn kiosk(&self) -> Kiosk<'_>;
}

impl ConsoleHost for OperatorWindow {
    fn operator(&self) -> Operator<'_> {
        self.global::<Operator>()
    }
    fn kiosk(&self) -> Kiosk<'_> {
        self.global::<Kiosk>()
    }
}

impl ConsoleHost for AppWindow {
    fn operator(&self) -> Operator<'_> {
        self.global::<Operator>()
    }
    fn kiosk(&self) -> Kiosk<'_> {
        self.global::<Kiosk>()
    }
}

/// The services shared with the kiosk's customer flow when the console runs inside the kiosk window.
pub type SharedServices = Rc<RefCell<Box<dyn Services>>>;

/// Where the console hands an action that needs confirming.
type GuardHook = Box<dyn Fn(Guarded)>;

/// The operator console over a window and its services.
pub struct OperatorView<H: ConsoleHost> {
    host: H,
    services: SharedServices,
    api: RefCell<Box<dyn OperatorApi>>,
    /// Called on every operator action (the kiosk keeps an open console alive while it is used).
    on_touch: RefCell<Option<Box<dyn Fn()>>>,
    /// Called by the exit button (the kiosk closes the console).
    on_exit: RefCell<Option<Box<dyn Fn()>>>,
    /// Asked before an action that cannot be undone (the kiosk asks for the PIN again, then calls
    /// [`OperatorView::perform`]); none: carried out at once (the desktop console).
    on_guard: RefCell<Option<GuardHook>>,
    /// The console is shown (the camera page's preview runs only then).
    open: Cell<bool>,
    /// A camera chosen now is remembered across restarts (the last camera list said so).
    camera_remembered: Cell<bool>,
}

impl<H: ConsoleHost> OperatorView<H> {
    /// Wires `host`'s console to `services` and `api`. The console starts closed: call [`OperatorView::open`].
    pub fn new(host: H, services: SharedServices, api: Box<dyn OperatorApi>) -> Rc<OperatorView<H>> {
        let target = api.target();
        {
            let op = host.operator();
            op.set_api_target(target.url.as_str().into());
            op.set_sandbox(target.sandbox);
            op.set_manages_requests(target.manages_requests);
            let k = host.kiosk();
            k.set_demo(services.borrow().is_demo());
            k.set_sandbox(target.sandbox);
        }
        let view = Rc::new(OperatorView {
            host,
            services,
            api: RefCell::new(api),
            on_touch: RefCell::new(None),
            on_exit: RefCell::new(None),
            on_guard: RefCell::new(None),
            open: Cell::new(false),
            camera_remembered: Cell::new(false),
        });
        view.wire();
        view
    }

    /// The window.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// Calls `f` on every operator action.
    pub fn on_touch(&self, f: impl Fn() + 'static) {
        *self.on_touch.borrow_mut() = Some(Box::new(f));
    }

    /// Calls `f` when the operator presses exit (shown only with `in_kiosk`).
    pub fn on_exit(&self, f: impl Fn() + 'static, in_kiosk: bool) {
        *self.on_exit.borrow_mut() = Some(Box::new(f));
        self.host.operator().set_in_kiosk(in_kiosk);
    }

    /// Hands actions that cannot be undone (accept, delete, purge) to `f` instead of carrying them out; `f` calls
    /// [`OperatorView::perform`] once they are confirmed.
    pub fn on_guard(&self, f: impl Fn(Guarded) + 'static) {
        *self.on_guard.borrow_mut() = Some(Box::new(f));
    }

    /// Carries out `action` now (confirmed, or no confirmation asked for).
    pub fn perform(&self, action: Guarded) {
        match action {
            Guarded::Purge(r) => {
                let result = self.services.borrow_mut().purge(&r);
                self.after_queue_action(result, Say::Purged, &r);
            }
            Guarded::Accept(id) => {
                self.host.operator().set_requests_loading(true);
                self.api.borrow_mut().change_request(&id, RequestChange::Accept);
            }
            Guarded::Delete(id) => {
                self.host.operator().set_requests_loading(true);
                self.api.borrow_mut().change_request(&id, RequestChange::Delete);
            }
        }
    }

    /// `action` through the guard if there is one, else at once.
    fn guarded(&self, action: Guarded) {
        let guard = self.on_guard.borrow();
        match guard.as_ref() {
            Some(f) => f(action),
            None => {
                drop(guard);
                self.perform(action);
            }
        }
    }

    /// Shows the console on its queue page, loaded fresh.
    pub fn open(&self) {
        self.open.set(true);
        let op = self.host.operator();
        self.say(Say::Nothing, "", "");
        op.set_confirm_delete(SharedString::default());
        op.set_connection(ConnectionTest::Untested);
        self.show_page(ConsolePage::Queue);
    }

    /// The console is hidden: stops its camera preview and forgets its selections.
    pub fn close(&self) {
        self.open.set(false);
        self.stop_camera();
        let op = self.host.operator();
        op.set_selected(SharedString::default());
        op.set_selected_request(SharedString::default());
        op.set_confirm_delete(SharedString::default());
        self.say(Say::Nothing, "", "");
        op.set_requests(ModelRc::default());
        op.set_rows(ModelRc::default());
    }

    /// Reloads the queue and the alerts.
    pub fn refresh(&self) {
        let op = self.host.operator();
        let mut services = self.services.borrow_mut();
        let alerts = services.queue_alerts();
        self.show_queue_lock(alerts.locked);
        op.set_api_key_rejected(alerts.api_key_rejected);
        op.set_quarantine(alerts.quarantine.unwrap_or_default().into());
        op.set_expired_count(i32::try_from(alerts.expired).unwrap_or(i32::MAX));
        match services.queue_items() {
            Ok(items) => {
                let rows: Vec<QueueRow> = items.iter().map(row).collect();
                op.set_rows(ModelRc::new(VecModel::from(rows)));
            }
            Err(e) => self.say(Say::QueueUnavailable, "", &e.to_string()),
        }
    }

    /// Says on the camera page why the customer camera is unavailable (`None`: it is available).
    pub fn show_camera_unavailable(&self, reason: Option<String>) {
        self.host.operator().set_camera_unavailable(reason.unwrap_or_default().into());
    }

    /// Shows (or clears) the queue-locked alert with its reason.
    pub fn show_queue_lock(&self, lock: Option<QueueLock>) {
        self.host.operator().set_queue_lock(lock.map_or("", QueueLock::as_str).into());
    }

    /// Shows the outcome of the last action: a code the console words (and translates), its argument, and a
    /// technical detail (an error's own words) shown under it.
    fn say(&self, what: Say, arg: &str, detail: &str) {
        let op = self.host.operator();
        op.set_message_code(what.code().into());
        op.set_message_arg(arg.into());
        op.set_message_detail(detail.into());
        op.set_message_explain(SharedString::default());
    }

    /// Shows a failed API call: the outcome, the failure's explanation (worded by the console) and its technical
    /// words.
    fn say_failure(&self, what: Say, arg: &str, f: &ApiFailure) {
        self.say(what, arg, &failure_text(f));
        self.host.operator().set_message_explain(f.explain.into());
    }

    /// Checks the connection in the background, as the connection page's button does (the answer is a
    /// [`ConsoleReport::Connection`]).
    pub fn probe_connection(&self) {
        self.api.borrow_mut().test_connection();
    }

    /// Takes everything waiting in `mailbox` and shows the console's part and the status bar's (the desktop
    /// window's drain; the customer flow's other reports are dropped there).
    pub fn drain(&self, mailbox: &super::Mailbox) {
        let (_, reports) = mailbox.take();
        if let Some(frame) = mailbox.take_console_frame() {
            self.show_frame(frame);
        }
        for r in reports {
            match r {
                super::Report::Console(c) => {
                    if let ConsoleReport::Connection(result) = &c {
                        // The status bar's connection state comes from the console's own check here (the desktop
                        // window has no flow): it must not stay at "Checking the connection…".
                        let k = self.host.kiosk();
                        k.set_online(match result {
                            Ok(_) => true,
                            Err(f) => f.code.prompt().class != crate::api::ErrorClass::Transient,
                        });
                        k.set_connection_known(true);
                    }
                    self.report(c)
                }
                super::Report::CameraStatus(reason) => self.show_camera_unavailable(reason),
                super::Report::Event(crate::flow::Event::Status(st)) => {
                    let k = self.host.kiosk();
                    k.set_online(st.online == Some(true));
                    k.set_connection_known(st.online.is_some());
                    k.set_pending(clamp_i32(st.pending));
                }
                super::Report::QueueLocked(lock) => {
                    self.host.kiosk().set_queue_locked(lock.is_some());
                    self.show_queue_lock(lock);
                }
                _ => {}
            }
        }
    }

    /// A worker's answer.
    pub fn report(&self, report: ConsoleReport) {
        let op = self.host.operator();
        match report {
            ConsoleReport::Requests { accepted, result } => {
                if accepted != op.get_requests_accepted() {
                    return; // an answer for the other list, which is no longer shown
                }
                op.set_requests_loading(false);
                op.set_requests_failed(result.is_err());
                match result {
                    Ok(list) => {
                        let rows: Vec<RequestRow> = list.iter().map(request_row).collect();
                        let selected = op.get_selected_request();
                        if !list.iter().any(|r| r.id == selected.as_str()) {
                            op.set_selected_request(SharedString::default());
                        }
                        op.set_requests(ModelRc::new(VecModel::from(rows)));
                    }
                    Err(f) => {
                        op.set_requests(ModelRc::default());
                        op.set_selected_request(SharedString::default());
                        self.say_failure(Say::NotListed, "", &f);
                    }
                }
            }
            ConsoleReport::RequestChanged { id, change, result } => {
                op.set_requests_loading(false);
                match (change, result) {
                    (RequestChange::Accept, Ok(())) => self.say(Say::Accepted, &id, ""),
                    (RequestChange::Delete, Ok(())) => {
                        op.set_selected_request(SharedString::default());
                        self.say(Say::Deleted, &id, "");
                    }
                    (RequestChange::Accept, Err(f)) => self.say_failure(Say::NotAccepted, &id, &f),
                    (RequestChange::Delete, Err(f)) => self.say_failure(Say::NotDeleted, &id, &f),
                }
                self.list_requests(op.get_requests_accepted());
            }
            ConsoleReport::Connection(result) => match result {
                Ok(elapsed) => {
                    op.set_connection_ms(clamp_i32(elapsed.as_millis()));
                    op.set_connection(ConnectionTest::Ok);
                }
                Err(f) => {
                    op.set_connection_error(f.code.as_str().into());
                    op.set_connection_explain(f.explain.into());
                    op.set_connection_detail(f.detail.into());
                    op.set_connection(ConnectionTest::Failed);
                }
            },
            ConsoleReport::Cameras { options, in_use, remembered } => {
                self.camera_remembered.set(remembered);
                let choices: Vec<CameraChoice> = options
                    .iter()
                    .map(|o| CameraChoice {
                        id: o.id.as_str().into(),
                        kind: o.kind.as_str().into(),
                        name: o.name.as_str().into(),
                    })
                    .collect();
                op.set_cameras(ModelRc::new(VecModel::from(choices)));
                op.set_camera_in_use(in_use.as_str().into());
                // The camera page opens on the camera the kiosk uses.
                if self.open.get() && op.get_page() == ConsolePage::Camera && op.get_camera_previewed().is_empty() {
                    self.preview(&in_use);
                }
            }
            ConsoleReport::CameraCheck { accepted, hint, metrics } => {
                if op.get_camera_previewed().is_empty() {
                    return;
                }
                op.set_camera_accepted(accepted);
                op.set_camera_hint(hint.unwrap_or_default().into());
                let rows: Vec<Metric> = metrics
                    .into_iter()
                    .map(|(name, value)| Metric { name: name.into(), value: value.into() })
                    .collect();
                op.set_camera_metrics(ModelRc::new(VecModel::from(rows)));
            }
            ConsoleReport::CameraFailed(why) => {
                op.set_camera_live(false);
                op.set_camera_status(why.into());
            }
        }
    }

    /// A frame of the camera previewed on the camera page.
    pub fn show_frame(&self, pixels: SharedPixelBuffer<Rgb8Pixel>) {
        let op = self.host.operator();
        if !self.open.get() || op.get_page() != ConsolePage::Camera || op.get_camera_previewed().is_empty() {
            return;
        }
        // On the UI thread, without decoding: the worker sent raw RGB already scaled.
        op.set_camera_preview(Image::from_rgb8(pixels));
        op.set_camera_live(true);
        op.set_camera_status(SharedString::default());
    }

    fn touch(&self) {
        if let Some(f) = self.on_touch.borrow().as_ref() {
            f();
        }
    }

    fn show_page(&self, page: ConsolePage) {
        let op = self.host.operator();
        if op.get_page() == ConsolePage::Camera && page != ConsolePage::Camera {
            self.stop_camera();
        }
        op.set_page(page);
        match page {
            ConsolePage::Queue => self.refresh(),
            ConsolePage::Requests => self.list_requests(op.get_requests_accepted()),
            ConsolePage::Camera => {
                self.stop_camera();
                // The answer lists the cameras, then previews the one in use.
                self.services.borrow_mut().list_cameras();
            }
            ConsolePage::Connection => {}
        }
    }

    fn list_requests(&self, accepted: bool) {
        let op = self.host.operator();
        if !op.get_manages_requests() {
            // Behind the bank's gateway the kiosk has no operator credential: the page says so, and asks nothing.
            return;
        }
        op.set_requests_accepted(accepted);
        op.set_requests_loading(true);
        self.api.borrow_mut().list_requests(accepted);
    }

    fn preview(&self, id: &str) {
        let op = self.host.operator();
        op.set_camera_previewed(id.into());
        op.set_camera_live(false);
        op.set_camera_status(SharedString::default());
        op.set_camera_hint(SharedString::default());
        op.set_camera_accepted(false);
        op.set_camera_metrics(ModelRc::default());
        self.services.borrow_mut().console_camera(Some(id), op.get_camera_face_mode());
    }

    fn stop_camera(&self) {
        let op = self.host.operator();
        if !op.get_camera_previewed().is_empty() {
            self.services.borrow_mut().console_camera(None, true);
        }
        op.set_camera_previewed(SharedString::default());
        op.set_camera_live(false);
        op.set_camera_preview(Image::default());
        op.set_camera_metrics(ModelRc::default());
    }

    fn wire(self: &Rc<Self>) {
        let op = self.host.operator();
        // Every callback counts as a touch, then runs `f` on the view if it is still alive.
        macro_rules! on {
            ($setter:ident, |$v:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {{
                let w = Rc::downgrade(self);
                op.$setter(move |$($arg: $ty),*| {
                    if let Some($v) = w.upgrade() {
                        $v.touch();
                        $body;
                    }
                });
            }};
        }
        on!(on_show_page, |v, page: ConsolePage| v.show_page(page));
        on!(on_refresh, |v| v.refresh());
        on!(on_select, |v, r: SharedString| v.host.operator().set_selected(r));
        on!(on_retry_item, |v, r: SharedString| {
            let result = v.services.borrow_mut().retry(&r);
            v.after_queue_action(result, Say::Retried, &r);
        });
        on!(on_purge_item, |v, r: SharedString| {
            if !r.is_empty() {
                v.guarded(Guarded::Purge(r.to_string()));
            }
        });
        on!(on_acknowledge, |v, code: SharedString| {
            let which = match code.as_str() {
                "quarantine" => Acknowledgeable::Quarantine,
                "expired" => Acknowledgeable::Expired,
                _ => return,
            };
            let result = v.services.borrow_mut().acknowledge(which);
            if let Err(e) = result {
                v.say(Say::QueueUnavailable, "", &e.to_string());
            }
            v.refresh();
        });
        on!(on_show_requests, |v, accepted: bool| {
            v.host.operator().set_selected_request(SharedString::default());
            v.list_requests(accepted);
        });
        on!(on_select_request, |v, id: SharedString| v.host.operator().set_selected_request(id));
        on!(on_accept_request, |v, id: SharedString| {
            if !id.is_empty() {
                v.guarded(Guarded::Accept(id.to_string()));
            }
        });
        on!(on_delete_request, |v, id: SharedString| v.host.operator().set_confirm_delete(id));
        on!(on_cancel_delete, |v| v.host.operator().set_confirm_delete(SharedString::default()));
        on!(on_confirm_delete_request, |v| {
            let op = v.host.operator();
            let id = op.get_confirm_delete();
            op.set_confirm_delete(SharedString::default());
            if !id.is_empty() {
                v.guarded(Guarded::Delete(id.to_string()));
            }
        });
        on!(on_test_connection, |v| {
            v.host.operator().set_connection(ConnectionTest::Testing);
            v.api.borrow_mut().test_connection();
        });
        on!(on_preview_camera, |v, id: SharedString| v.preview(&id));
        on!(on_camera_check_face, |v, face: bool| {
            let op = v.host.operator();
            op.set_camera_face_mode(face);
            let id = op.get_camera_previewed();
            if !id.is_empty() {
                v.preview(&id);
            }
        });
        on!(on_use_camera, |v, id: SharedString| {
            v.services.borrow_mut().use_camera(&id);
            v.say(if v.camera_remembered.get() { Say::CameraRemembered } else { Say::CameraInUse }, "", "");
        });
        on!(on_exit, |v| {
            if let Some(f) = v.on_exit.borrow().as_ref() {
                f();
            }
        });
    }

    fn after_queue_action(&self, result: Result<(), super::ServiceError>, done: Say, reference: &str) {
        match result {
            Ok(()) => {
                self.host.operator().set_selected(SharedString::default());
                self.say(done, reference, "");
            }
            Err(e) => self.say(Say::QueueActionFailed, reference, &e.to_string()),
        }
        self.refresh();
    }
}

/// What the console says about the last action (`Texts.console-message` words each code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Say {
    Nothing,
    Retried,
    Purged,
    QueueActionFailed,
    QueueUnavailable,
    Accepted,
    Deleted,
    NotAccepted,
    NotDeleted,
    NotListed,
    CameraInUse,
    CameraRemembered,
}

impl Say {
    fn code(self) -> &'static str {
        match self {
            Say::Nothing => "",
            Say::Retried => "retried",
            Say::Purged => "purged",
            Say::QueueActionFailed => "queue_action_failed",
            Say::QueueUnavailable => "queue_unavailable",
            Say::Accepted => "accepted",
            Say::Deleted => "deleted",
            Say::NotAccepted => "not_accepted",
            Say::NotDeleted => "not_deleted",
            Say::NotListed => "not_listed",
            Say::CameraInUse => "camera_in_use",
            Say::CameraRemembered => "camera_remembered",
        }
    }
}

/// An API failure's technical detail: its stable code and the error's own words.
fn failure_text(f: &ApiFailure) -> String {
    if f.detail.is_empty() { format!("[{}]", f.code.as_str()) } else { format!("[{}] {}", f.code.as_str(), f.detail) }
}

fn row(i: &QueueItem) -> QueueRow {
    QueueRow {
        reference: i.reference.as_str().into(),
        state: i.state.as_str().into(),
        age: format_age(i.age).into(),
        attempts: i.attempts.try_into().unwrap_or(i32::MAX),
        last_error: i.last_error.map_or("", |c| c.as_str()).into(),
        contact: if i.state == "needs_user" {
            i.contact.clone().unwrap_or_default().into()
        } else {
            SharedString::default()
        },
    }
}

fn request_row(r: &RequestSummary) -> RequestRow {
    RequestRow {
        id: r.id.as_str().into(),
        email: r.email.as_str().into(),
        phone: r.phone.as_str().into(),
        validated: r.validated,
        accepted: r.accepted,
        score: r.face_score.map(|s| format!("{s:.2}")).unwrap_or_default().into(),
    }
}

fn clamp_i32<T: TryInto<i32>>(v: T) -> i32 {
    v.try_into().unwrap_or(i32::MAX)
}

/// "42 s", "3 min", "5 h", "2 d".
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_short_and_round_down() {
        let cases = [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (86400 * 3 + 5, "3 d")];
        for (secs, want) in cases {
            assert_eq!(format_age(Duration::from_secs(secs)), want);
        }
    }
}
