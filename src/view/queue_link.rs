//! [`QueueLink`]: the kiosk UI's side of the durable queue ([`crate::queue::QueueHandle`]). It saves an application
//! on a helper thread and posts [`Event::Saved`] / [`Event::SaveFailed`], and a "ui-queue-events" thread turns the
//! queue's events (which the uploader causes) into the flow's reports: [`Event::Progress`], [`Event::Accepted`],
//! [`Event::Rejected`] and the status bar's [`Event::Status`] (online or offline, applications waiting).
//!
//! Threads: the methods run on the UI thread; [`QueueLink::enqueue`] returns at once (the save, which may wait for
//! disk, runs on a "ui-enqueue" thread); the operator calls (`items`, `alerts`, `retry`, `purge`) are short
//! requests to the queue thread, each bounded by the queue handle's own deadline. The events thread ends when the
//! queue stops (its event channel closes) or when the link is dropped (checked at least every [`EVENT_WAIT`]).

use super::services::{Mailbox, QueueAlerts, QueueItem, QueueLock, Report, ServiceError};
use crate::api::{ErrorClass, ErrorCode};
use crate::flow::{Event, KioskStatus};
use crate::queue::{self, Acknowledgeable, Alert, NewEnrollment, QueueError, QueueHandle, State, StepKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the events thread waits for an event before checking whether it should stop.
const EVENT_WAIT: Duration = Duration::from_millis(200);
/// The steps an application goes through as the customer sees them (document, face match, request; liveness clips
/// are not stored by this version).
const STEPS: u8 = 3;

/// The real queue behind the kiosk UI. See the module header.
pub struct QueueLink {
    queue: QueueHandle,
    mailbox: Arc<Mailbox>,
    key_rejected: Arc<AtomicBool>,
    status: Arc<Mutex<KioskStatus>>,
    stop: Arc<AtomicBool>,
    events: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for QueueLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueLink").field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl QueueLink {
    /// Subscribes to `queue`'s events, starts the events thread and posts the first status (the applications
    /// already waiting). The uploader is started (and stopped) by the caller.
    pub fn new(queue: QueueHandle, mailbox: Arc<Mailbox>) -> Result<QueueLink, QueueError> {
        let events = queue.subscribe()?;
        let key_rejected = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(KioskStatus { online: None, pending: 0 }));
        let stop = Arc::new(AtomicBool::new(false));
        let mapper = Mapper {
            queue: queue.clone(),
            mailbox: mailbox.clone(),
            key_rejected: key_rejected.clone(),
            status: status.clone(),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ui-queue-events".into())
            .spawn(move || mapper.run(events, &flag))
            .map_err(|source| QueueError::Io { context: "cannot start the queue events thread".into(), source })?;
        let link = QueueLink { queue, mailbox, key_rejected, status, stop, events: Some(thread) };
        if let Ok(s) = link.queue.status() {
            link.key_rejected.store(s.api_key_rejected, Ordering::SeqCst);
            if let Some(reason) = s.locked {
                link.mailbox.post(Report::QueueLocked(Some(reason.into())));
            }
        }
        post_status(&link.queue, &link.mailbox, &link.status, None);
        Ok(link)
    }

    /// The queue handle (for the uploader).
    pub fn handle(&self) -> &QueueHandle {
        &self.queue
    }

    /// Saves `new` on a "ui-enqueue" thread; posts [`Event::Saved`] once committed, then `on_saved` runs (the
    /// caller drops its copy of the photos), or [`Event::SaveFailed`].
    pub fn enqueue(&self, session: u64, new: NewEnrollment, on_saved: impl FnOnce() + Send + 'static) {
        let (queue, mailbox, status) = (self.queue.clone(), self.mailbox.clone(), self.status.clone());
        let spawned = std::thread::Builder::new().name("ui-enqueue".into()).spawn(move || match queue.enqueue(new) {
            Ok(saved) => {
                log::info!("application {} saved in the queue", saved.reference);
                mailbox.post_event(Event::Saved { session, reference: saved.reference });
                on_saved();
                post_status(&queue, &mailbox, &status, None);
            }
            Err(e) => {
                log::error!("the application was not saved: {e}");
                mailbox.post_event(Event::SaveFailed { session });
            }
        });
        if let Err(e) = spawned {
            log::error!("cannot start the enqueue thread: {e}");
            self.mailbox.post_event(Event::SaveFailed { session });
        }
    }

    /// The applications in the queue, newest first (contact details only for those that need the customer).
    pub fn items(&self) -> Result<Vec<QueueItem>, ServiceError> {
        let mut list = self.queue.list().map_err(service_error)?;
        list.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
        let now = queue::now_ms();
        Ok(list
            .into_iter()
            .map(|e| {
                let contact = if e.state == State::NeedsUser {
                    self.queue.show(&e.reference).ok().map(|d| format!("{} / {}", d.email, d.phone))
                } else {
                    None
                };
                QueueItem {
                    reference: e.reference,
                    state: e.state.as_str().to_string(),
                    age: Duration::from_millis((now - e.created_at_ms).max(0) as u64),
                    attempts: e.attempts,
                    last_error: e.last_error.as_deref().and_then(ErrorCode::parse),
                    contact,
                }
            })
            .collect())
    }

    /// The queue's alerts (a queue that does not answer counts as locked: nothing can be saved).
    pub fn alerts(&self) -> QueueAlerts {
        let api_key_rejected = self.key_rejected.load(Ordering::SeqCst);
        match self.queue.status() {
            Ok(s) => QueueAlerts {
                locked: s.locked.map(QueueLock::from),
                api_key_rejected,
                quarantine: s.quarantine,
                expired: s.expired_unacknowledged,
            },
            Err(e) => {
                log::error!("queue status: {e}");
                QueueAlerts { locked: Some(QueueLock::NotAnswering), api_key_rejected, ..QueueAlerts::default() }
            }
        }
    }

    /// Clears an alert an operator has seen.
    pub fn acknowledge(&self, which: Acknowledgeable) -> Result<(), ServiceError> {
        self.queue.acknowledge(which).map(|_| ()).map_err(service_error)
    }

    /// Makes an application due now.
    pub fn retry(&self, reference: &str) -> Result<(), ServiceError> {
        self.queue.retry(reference).map(|_| ()).map_err(service_error)?;
        post_status(&self.queue, &self.mailbox, &self.status, None);
        Ok(())
    }

    /// Deletes an application and its images from this kiosk.
    pub fn purge(&self, reference: &str) -> Result<(), ServiceError> {
        self.queue.purge(reference).map(|_| ()).map_err(service_error)?;
        post_status(&self.queue, &self.mailbox, &self.status, None);
        Ok(())
    }
}

impl Drop for QueueLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The events thread checks the flag at least every EVENT_WAIT (plus one bounded status call): the join is
        // bounded.
        if let Some(t) = self.events.take()
            && t.join().is_err()
        {
            log::error!("the queue events thread panicked");
        }
    }
}

fn service_error(e: QueueError) -> ServiceError {
    match e {
        QueueError::NotFound(r) => ServiceError::NotFound(r),
        other => ServiceError::Unavailable(other.to_string()),
    }
}

/// Asks the queue how many applications wait to be sent and posts the status bar's report; `online` (when known)
/// replaces the last network state.
fn post_status(queue: &QueueHandle, mailbox: &Mailbox, status: &Mutex<KioskStatus>, online: Option<bool>) {
    let pending = match queue.sendable() {
        Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
        Err(e) => {
            log::warn!("queue status: {e}");
            return;
        }
    };
    let s = {
        let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
        if online.is_some() {
            s.online = online;
        }
        s.pending = pending;
        *s
    };
    mailbox.post_event(Event::Status(s));
}

/// How far along an application is once `step` is done, out of [`STEPS`].
fn steps_done(step: StepKind) -> u8 {
    match step {
        StepKind::Document => 1,
        StepKind::Face | StepKind::Liveness => 2,
        StepKind::Request => STEPS,
    }
}

/// What one queue event means for the UI: the flow event (if any) and the network state it shows (if any).
/// Pure, so it is tested on its own.
pub(crate) fn map_event(ev: &queue::Event) -> (Option<Event>, Option<bool>) {
    use queue::Event as Q;
    match ev {
        Q::StepDone { reference, step, .. } => {
            (Some(Event::Progress { reference: reference.clone(), done: steps_done(*step), total: STEPS }), Some(true))
        }
        Q::Done { reference, .. } => (Some(Event::Accepted { reference: reference.clone() }), Some(true)),
        Q::NeedsUser { reference, code, .. } | Q::Failed { reference, code, .. } => {
            (Some(Event::Rejected { reference: reference.clone(), code: *code }), Some(true))
        }
        // A transient error: the application stays saved and the customer sees the saved screen.
        Q::Retrying { code, .. } => {
            (None, matches!(code.prompt().class, ErrorClass::Transient | ErrorClass::Ambiguous).then_some(false))
        }
        // The API refused the key: nothing is sent until an operator fixes it. The application stays saved and is
        // sent once the key works; meanwhile its customer sees "this kiosk needs attention" (ask a member of staff).
        Q::Paused { reference, code, .. } => {
            (Some(Event::Rejected { reference: reference.clone(), code: *code }), Some(false))
        }
        Q::Saved { .. } | Q::StepStarted { .. } | Q::Purged { .. } | Q::Alert { .. } => (None, None),
    }
}

/// The events thread's state.
struct Mapper {
    queue: QueueHandle,
    mailbox: Arc<Mailbox>,
    key_rejected: Arc<AtomicBool>,
    status: Arc<Mutex<KioskStatus>>,
}

impl Mapper {
    fn run(self, events: Receiver<queue::Event>, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let ev = match events.recv_timeout(EVENT_WAIT) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let queue::Event::Alert { alert } = &ev {
                match alert {
                    Alert::ApiKeyRejected => self.key_rejected.store(true, Ordering::SeqCst),
                    Alert::ApiKeyAccepted => self.key_rejected.store(false, Ordering::SeqCst),
                    Alert::Locked { reason } => self.mailbox.post(Report::QueueLocked(Some((*reason).into()))),
                    _ => {}
                }
                log::warn!("queue alert: {alert:?}");
            }
            let (flow_event, online) = map_event(&ev);
            if let Some(e) = flow_event {
                self.mailbox.post_event(e);
            }
            if !matches!(ev, queue::Event::StepStarted { .. } | queue::Event::Alert { .. }) {
                post_status(&self.queue, &self.mailbox, &self.status, online);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Event as Q;

    #[test]
    fn queue_events_map_to_flow_reports() {
        let r = || "K7Q-4MX".to_string();
        let code = ErrorCode::FaceMismatch;
        let transient = ErrorCode::NetworkUnreachable;
        assert_eq!(transient.prompt().class, ErrorClass::Transient);
        let cases: Vec<(Q, Option<Event>, Option<bool>)> = vec![
            (
                Q::StepDone { id: 1, reference: r(), step: StepKind::Document },
                Some(Event::Progress { reference: r(), done: 1, total: STEPS }),
                Some(true),
            ),
            (
                Q::StepDone { id: 1, reference: r(), step: StepKind::Request },
                Some(Event::Progress { reference: r(), done: STEPS, total: STEPS }),
                Some(true),
            ),
            (
                Q::Done { id: 1, reference: r(), document_id: None, face_score: Some(0.9) },
                Some(Event::Accepted { reference: r() }),
                Some(true),
            ),
            (
                Q::NeedsUser { id: 1, reference: r(), step: StepKind::Face, code, http_status: Some(422) },
                Some(Event::Rejected { reference: r(), code }),
                Some(true),
            ),
            (
                Q::Failed { id: 1, reference: r(), step: StepKind::Face, code, http_status: Some(400) },
                Some(Event::Rejected { reference: r(), code }),
                Some(true),
            ),
            (
                Q::Retrying {
                    id: 1,
                    reference: r(),
                    step: StepKind::Document,
                    code: transient,
                    http_status: None,
                    in_ms: 1000,
                    ambiguous: false,
                },
                None,
                Some(false),
            ),
            (Q::Saved { id: 1, reference: r() }, None, None),
            (
                Q::Paused {
                    id: 1,
                    reference: r(),
                    step: StepKind::Document,
                    code: ErrorCode::InvalidApiKey,
                    http_status: Some(401),
                },
                Some(Event::Rejected { reference: r(), code: ErrorCode::InvalidApiKey }),
                Some(false),
            ),
        ];
        for (ev, flow, online) in cases {
            assert_eq!(map_event(&ev), (flow, online), "{ev:?}");
        }
    }
}
