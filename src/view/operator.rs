//! The operator console's glue: the queue page (state, age, attempts, last error, follow-up contact details; retry
//! and purge; the queue-locked and API-key-rejected alerts) over the same [`Services`] as the kiosk. UI thread only.

use super::services::{QueueItem, Services};
use super::ui::{Kiosk, Operator, OperatorWindow, QueueRow};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The operator window and its services.
pub struct OperatorView {
    app: OperatorWindow,
    services: RefCell<Box<dyn Services>>,
}

impl OperatorView {
    /// Wires `app` to `services` and loads the queue.
    pub fn new(app: OperatorWindow, services: Box<dyn Services>) -> Rc<OperatorView> {
        app.global::<Kiosk>().set_demo(services.is_demo());
        let view = Rc::new(OperatorView { app, services: RefCell::new(services) });
        let op = view.app.global::<Operator>();
        let w = Rc::downgrade(&view);
        op.on_refresh(move || {
            if let Some(v) = w.upgrade() {
                v.refresh();
            }
        });
        let w = Rc::downgrade(&view);
        op.on_select(move |r: SharedString| {
            if let Some(v) = w.upgrade() {
                v.app.global::<Operator>().set_selected(r);
            }
        });
        let w = Rc::downgrade(&view);
        op.on_retry_item(move |r: SharedString| {
            if let Some(v) = w.upgrade() {
                let result = v.services.borrow_mut().retry(&r);
                v.after_action(result.map(|()| format!("{r} will be sent again now.")));
            }
        });
        let w = Rc::downgrade(&view);
        op.on_purge_item(move |r: SharedString| {
            if let Some(v) = w.upgrade() {
                let result = v.services.borrow_mut().purge(&r);
                v.after_action(result.map(|()| format!("{r} and its images were deleted from this kiosk.")));
            }
        });
        view.refresh();
        view
    }

    /// The window.
    pub fn app(&self) -> &OperatorWindow {
        &self.app
    }

    /// Reloads the queue and the alerts.
    pub fn refresh(&self) {
        let op = self.app.global::<Operator>();
        let mut services = self.services.borrow_mut();
        let alerts = services.queue_alerts();
        op.set_queue_locked(alerts.locked);
        op.set_api_key_rejected(alerts.api_key_rejected);
        match services.queue_items() {
            Ok(items) => {
                let rows: Vec<QueueRow> = items.iter().map(row).collect();
                op.set_rows(ModelRc::new(VecModel::from(rows)));
            }
            Err(e) => op.set_message(e.to_string().into()),
        }
    }

    fn after_action(&self, result: Result<String, super::ServiceError>) {
        let op = self.app.global::<Operator>();
        match result {
            Ok(msg) => {
                op.set_selected(SharedString::default());
                op.set_message(msg.into());
            }
            Err(e) => op.set_message(e.to_string().into()),
        }
        self.refresh();
    }
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
