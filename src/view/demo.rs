//! DEMO stand-ins for the camera, the capture checks and the queue (the real ones are [`super::LiveServices`]),
//! for the screenshot gallery and the headless UI tests: generated preview frames (a card or a face drifting into the guide), scripted hints (not real checks), and a
//! simulated queue and uploader. The status bar says DEMO whenever these run.
//!
//! Two flavours of [`Services`]: [`DemoServices`] runs a camera thread and a submission thread per application,
//! like the real thing will; [`StillServices`] answers synchronously (one frame per camera start, captures and saves
//! at once), for screenshots and headless tests. Both post to the UI's [`Mailbox`].

use super::console::{CameraKind, CameraOption, ConsoleReport};
use super::services::{Mailbox, QueueAlerts, QueueItem, Report, ServiceError, Services};
use crate::api::ErrorCode;
use crate::contact::{Email, Phone};
use crate::flow::{CameraMode, CaptureTarget, Event, KioskStatus};
use slint::{Rgb8Pixel, SharedPixelBuffer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Preview frames are generated at this size (16:9) ...
const PREVIEW_W: u32 = 640;
const PREVIEW_H: u32 = 360;
/// ... and this rate.
const PREVIEW_INTERVAL: Duration = Duration::from_millis(66);
/// Thumbnails for the review screen.
const THUMB_W: u32 = 320;
const THUMB_H: u32 = 180;
/// Seconds of scripted guidance before the demo scene is "ready".
const READY_AFTER: f32 = 3.0;

/// What the simulated uploader does with the next applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoOutcome {
    /// Saved, sent, accepted.
    #[default]
    Accept,
    /// Saved, sent, refused with this code.
    Reject(ErrorCode),
    /// Saved; the network is down, so it stays queued.
    Offline,
    /// The queue cannot save it.
    SaveFails,
}

/// The scripted hint and readiness of the demo scene `t` seconds after the camera started.
pub fn scripted_verdict(mode: CameraMode, t: f32) -> (bool, &'static str) {
    let steps: &[&str] = match mode {
        CameraMode::Document => &["fill_frame_with_card", "avoid_glare", "hold_still"],
        CameraMode::Face => &["look_at_camera", "move_closer", "centre_face"],
    };
    if t >= READY_AFTER {
        return (true, "looks_good");
    }
    let i = ((t / READY_AFTER) * steps.len() as f32) as usize;
    (false, steps[i.min(steps.len() - 1)])
}

/// A generated camera picture: a card or a face that drifts into the middle of the frame over [`READY_AFTER`]
/// seconds. Pure function of its arguments.
pub fn demo_frame(mode: CameraMode, t: f32, w: u32, h: u32) -> SharedPixelBuffer<Rgb8Pixel> {
    let mut buf = SharedPixelBuffer::<Rgb8Pixel>::new(w, h);
    let (wf, hf) = (w as f32, h as f32);
    let settle = (t / READY_AFTER).clamp(0.0, 1.0);
    // The subject starts off-centre and small, and settles in the middle at full size.
    let cx = wf * (0.5 + 0.25 * (1.0 - settle));
    let cy = hf * (0.5 + 0.1 * (1.0 - settle));
    let size = 0.6 + 0.4 * settle;
    let pixels = buf.make_mut_slice();
    for y in 0..h {
        for x in 0..w {
            let (xf, yf) = (x as f32, y as f32);
            // A dim room: a vertical gradient with a slow shimmer so the preview visibly moves.
            let shade = 40.0 + 50.0 * yf / hf + 8.0 * ((xf / 37.0) + t * 2.0).sin();
            let mut px = Rgb8Pixel { r: shade as u8, g: (shade * 1.05) as u8, b: (shade * 1.2).min(255.0) as u8 };
            match mode {
                CameraMode::Document => {
                    let cw = wf * 0.55 * size;
                    let ch = cw / 1.585;
                    let (dx, dy) = (xf - (cx - cw / 2.0), yf - (cy - ch / 2.0));
                    if (0.0..cw).contains(&dx) && (0.0..ch).contains(&dy) {
                        px = Rgb8Pixel { r: 226, g: 232, b: 214 };
                        // A portrait block on the left and lines of "text" on the right.
                        if dx > cw * 0.06 && dx < cw * 0.32 && dy > ch * 0.2 && dy < ch * 0.85 {
                            px = Rgb8Pixel { r: 150, g: 120, b: 100 };
                        } else if dx > cw * 0.4 && dx < cw * 0.92 && ((dy / ch * 10.0) as u32) % 2 == 1 && dy > ch * 0.2
                        {
                            px = Rgb8Pixel { r: 60, g: 70, b: 90 };
                        }
                    }
                }
                CameraMode::Face => {
                    let rx = wf * 0.13 * size;
                    let ry = rx * 1.3;
                    let (nx, ny) = ((xf - cx) / rx, (yf - cy) / ry);
                    let d = nx * nx + ny * ny;
                    if d < 1.0 {
                        px = Rgb8Pixel { r: 224, g: 180, b: 150 };
                        let eye = |ex: f32| ((nx - ex).powi(2) + (ny + 0.25).powi(2)) < 0.012;
                        if eye(-0.35) || eye(0.35) || (ny > 0.4 && ny < 0.48 && nx.abs() < 0.3) {
                            px = Rgb8Pixel { r: 40, g: 30, b: 30 };
                        }
                    } else if ny > 1.0 && nx.abs() < 2.2 - (ny - 1.0) * 0.2 {
                        // Shoulders.
                        px = Rgb8Pixel { r: 30, g: 60, b: 120 };
                    }
                }
            }
            pixels[(y * w + x) as usize] = px;
        }
    }
    buf
}

/// The simulated queue behind both demo flavours.
#[derive(Debug, Default)]
struct DemoQueue {
    items: Vec<(Instant, QueueItem)>,
    next: u32,
}

impl DemoQueue {
    /// The operator console's demo contents: a few applications in every state.
    fn seeded() -> DemoQueue {
        let now = Instant::now();
        let row = |reference: &str, state: &str, age: u64, attempts, last_error, contact: Option<&str>| {
            let at = now.checked_sub(Duration::from_secs(age)).unwrap_or(now);
            (
                at,
                QueueItem {
                    reference: reference.into(),
                    state: state.into(),
                    age: Duration::ZERO,
                    attempts,
                    last_error,
                    contact: contact.map(str::to_string),
                },
            )
        };
        DemoQueue {
            items: vec![
                row("DEMO-0103", "pending", 40, 0, None, None),
                row("DEMO-0102", "in_flight", 95, 1, Some(ErrorCode::Timeout), None),
                row(
                    "DEMO-0101",
                    "needs_user",
                    1800,
                    2,
                    Some(ErrorCode::FaceMismatch),
                    Some("ada@example.org · +44 20 7946 0958"),
                ),
                row("DEMO-0100", "failed", 7200, 5, Some(ErrorCode::UnexpectedResponse), None),
            ],
            next: 104,
        }
    }

    fn add(&mut self) -> String {
        let reference = format!("DEMO-{:04}", self.next);
        self.next += 1;
        let item = QueueItem {
            reference: reference.clone(),
            state: "pending".into(),
            age: Duration::ZERO,
            attempts: 0,
            last_error: None,
            contact: None,
        };
        self.items.insert(0, (Instant::now(), item));
        reference
    }

    fn set(&mut self, reference: &str, state: &str, error: Option<ErrorCode>) {
        if let Some((_, i)) = self.items.iter_mut().find(|(_, i)| i.reference == reference) {
            i.state = state.into();
            if error.is_some() {
                i.last_error = error;
            }
            if state == "in_flight" {
                i.attempts += 1;
            }
        }
    }

    fn pending(&self) -> u32 {
        self.items.iter().filter(|(_, i)| matches!(i.state.as_str(), "pending" | "in_flight")).count() as u32
    }

    fn list(&self) -> Vec<QueueItem> {
        self.items.iter().map(|(at, i)| QueueItem { age: at.elapsed(), ..i.clone() }).collect()
    }

    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        let (_, i) = self
            .items
            .iter_mut()
            .find(|(_, i)| i.reference == reference)
            .ok_or_else(|| ServiceError::NotFound(reference.into()))?;
        i.state = "pending".into();
        Ok(())
    }

    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        let before = self.items.len();
        self.items.retain(|(_, i)| i.reference != reference);
        if self.items.len() == before { Err(ServiceError::NotFound(reference.into())) } else { Ok(()) }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The demo's data stays consistent between statements; a panicked holder leaves nothing half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Posts a capture's thumbnail and then its [`Event::Captured`].
fn post_capture(mailbox: &Mailbox, target: CaptureTarget, session: u64) {
    let mode = if target == CaptureTarget::Face { CameraMode::Face } else { CameraMode::Document };
    let pixels = demo_frame(mode, READY_AFTER, THUMB_W, THUMB_H);
    mailbox.post(Report::Thumbnail { session, target, pixels });
    mailbox.post_event(Event::Captured { session, target });
}

/// The demo's camera choices: automatic and the demo pictures, with `in_use` marked.
fn post_demo_cameras(mailbox: &Mailbox, in_use: &str) {
    let options = vec![
        CameraOption { id: "auto".into(), kind: CameraKind::Auto, name: String::new() },
        CameraOption { id: "demo".into(), kind: CameraKind::Demo, name: String::new() },
    ];
    mailbox.post(Report::Console(ConsoleReport::Cameras { options, in_use: in_use.to_string(), remembered: false }));
}

/// One generated frame of the scene, ready, and scripted measurements, for the console's camera page (DEMO: nothing
/// is measured).
fn post_demo_console_camera(mailbox: &Mailbox, face: bool) {
    let mode = if face { CameraMode::Face } else { CameraMode::Document };
    mailbox.post_console_frame(demo_frame(mode, READY_AFTER, PREVIEW_W, PREVIEW_H));
    let metric = |k: &str, v: &str| (k.to_string(), v.to_string());
    let metrics = if face {
        vec![
            metric("brightness", "121.400"),
            metric("face_offset", "0.081"),
            metric("face_share", "0.412"),
            metric("faces", "1"),
            metric("sharpness", "211.930"),
        ]
    } else {
        vec![metric("brightness", "148.200"), metric("card_fill", "0.874"), metric("sharpness", "187.020")]
    };
    mailbox.post(Report::Console(ConsoleReport::CameraCheck { accepted: true, hint: None, metrics }));
}

/// The threaded demo: a camera thread streaming generated frames and scripted verdicts, and a thread per
/// submission that simulates saving and sending. DEMO: nothing is checked, saved or sent.
pub struct DemoServices {
    mailbox: Arc<Mailbox>,
    queue: Arc<Mutex<DemoQueue>>,
    outcome: DemoOutcome,
    camera: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    held: Vec<CaptureTarget>,
    camera_in_use: String,
}

impl DemoServices {
    /// A demo posting to `mailbox`, with the given outcome for every application.
    pub fn new(mailbox: Arc<Mailbox>, outcome: DemoOutcome) -> DemoServices {
        let queue = Arc::new(Mutex::new(DemoQueue::seeded()));
        let online = outcome != DemoOutcome::Offline;
        mailbox.post_event(Event::Status(KioskStatus { online: Some(online), pending: lock(&queue).pending() }));
        DemoServices { mailbox, queue, outcome, camera: None, held: Vec::new(), camera_in_use: "demo".into() }
    }
}

impl Services for DemoServices {
    fn is_demo(&self) -> bool {
        true
    }

    fn start_camera(&mut self, mode: CameraMode, session: u64) {
        self.stop_camera();
        let stop = Arc::new(AtomicBool::new(false));
        let mailbox = self.mailbox.clone();
        let flag = stop.clone();
        let spawned = std::thread::Builder::new().name("demo-camera".into()).spawn(move || {
            let start = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                let t = start.elapsed().as_secs_f32();
                mailbox.post_frame(session, demo_frame(mode, t, PREVIEW_W, PREVIEW_H));
                let (ready, hint) = scripted_verdict(mode, t);
                mailbox.post_verdict(session, ready, Some(hint.to_string()));
                std::thread::sleep(PREVIEW_INTERVAL);
            }
        });
        match spawned {
            Ok(handle) => self.camera = Some((stop, handle)),
            Err(e) => log::error!("cannot start the demo camera thread: {e}"),
        }
    }

    fn stop_camera(&mut self) {
        if let Some((stop, handle)) = self.camera.take() {
            stop.store(true, Ordering::SeqCst);
            // The loop checks the flag every PREVIEW_INTERVAL, so this join is bounded.
            if handle.join().is_err() {
                log::error!("the demo camera thread panicked");
            }
        }
    }

    fn capture(&mut self, target: CaptureTarget, session: u64) {
        self.held.retain(|t| *t != target);
        self.held.push(target);
        post_capture(&self.mailbox, target, session);
    }

    fn drop_capture(&mut self, target: CaptureTarget) {
        self.held.retain(|t| *t != target);
    }

    fn enqueue(&mut self, session: u64, _email: Email, _phone: Phone, _supersedes: Option<String>) {
        let mailbox = self.mailbox.clone();
        let queue = self.queue.clone();
        let outcome = self.outcome;
        let spawned = std::thread::Builder::new().name("demo-uploader".into()).spawn(move || {
            let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
            pause(300);
            if outcome == DemoOutcome::SaveFails {
                mailbox.post_event(Event::SaveFailed { session });
                return;
            }
            let reference = lock(&queue).add();
            let status =
                |q: &DemoQueue| KioskStatus { online: Some(outcome != DemoOutcome::Offline), pending: q.pending() };
            mailbox.post_event(Event::Saved { session, reference: reference.clone() });
            mailbox.post_event(Event::Status(status(&lock(&queue))));
            if outcome == DemoOutcome::Offline {
                return;
            }
            lock(&queue).set(&reference, "in_flight", None);
            for done in 1..=3u8 {
                pause(500);
                mailbox.post_event(Event::Progress { reference: reference.clone(), done, total: 3 });
            }
            let event = match outcome {
                DemoOutcome::Reject(code) => {
                    lock(&queue).set(&reference, "needs_user", Some(code));
                    Event::Rejected { reference, code }
                }
                _ => {
                    lock(&queue).set(&reference, "done", None);
                    Event::Accepted { reference }
                }
            };
            mailbox.post_event(event);
            mailbox.post_event(Event::Status(status(&lock(&queue))));
        });
        if let Err(e) = spawned {
            log::error!("cannot start the demo uploader thread: {e}");
            self.mailbox.post_event(Event::SaveFailed { session });
        }
    }

    fn wipe(&mut self) {
        self.stop_camera();
        self.held.clear();
    }

    fn queue_items(&mut self) -> Result<Vec<QueueItem>, ServiceError> {
        Ok(lock(&self.queue).list())
    }

    fn queue_alerts(&mut self) -> QueueAlerts {
        QueueAlerts::default()
    }

    fn acknowledge(&mut self, _which: crate::queue::Acknowledgeable) -> Result<(), ServiceError> {
        // The demo queue raises no alert that needs acknowledging.
        Ok(())
    }

    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        lock(&self.queue).retry(reference)
    }

    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        lock(&self.queue).purge(reference)
    }

    fn list_cameras(&mut self) {
        post_demo_cameras(&self.mailbox, &self.camera_in_use);
    }

    fn console_camera(&mut self, id: Option<&str>, face: bool) {
        if id.is_some() {
            post_demo_console_camera(&self.mailbox, face);
        }
    }

    fn use_camera(&mut self, id: &str) {
        self.camera_in_use = id.to_string();
        post_demo_cameras(&self.mailbox, id);
    }
}

impl Drop for DemoServices {
    fn drop(&mut self) {
        self.stop_camera();
    }
}

/// A call the UI made on [`StillServices`], for tests to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `start_camera`.
    StartCamera(CameraMode),
    /// `stop_camera`.
    StopCamera,
    /// `capture`.
    Capture(CaptureTarget),
    /// `drop_capture`.
    Drop(CaptureTarget),
    /// `enqueue`, with the email and the superseded reference.
    Enqueue(String, Option<String>),
    /// `wipe`.
    Wipe,
    /// `retry`.
    Retry(String),
    /// `purge`.
    Purge(String),
    /// `console_camera`: the camera id shown on the console, `None` when stopped.
    ConsoleCamera(Option<String>),
    /// `use_camera`.
    UseCamera(String),
}

/// The synchronous demo: each camera start posts one generated frame (the scene `scene_time` seconds in) and its
/// scripted verdict; captures and saves are answered at once; the uploader's answers are left to the caller
/// (post them to the mailbox). Every call is recorded in [`StillServices::calls`]. DEMO, like [`DemoServices`].
pub struct StillServices {
    mailbox: Arc<Mailbox>,
    queue: DemoQueue,
    /// Seconds into the demo scene for the frame and verdict posted on a camera start.
    pub scene_time: f32,
    /// Whether saves fail.
    pub save_fails: bool,
    /// Every call so far, shared so a test can read it while the view owns the services.
    pub calls: Arc<Mutex<Vec<Call>>>,
    held: Vec<CaptureTarget>,
    camera_in_use: String,
}

impl StillServices {
    /// Posts to `mailbox`; frames show the scene one second in (guidance still showing).
    pub fn new(mailbox: Arc<Mailbox>) -> StillServices {
        StillServices {
            mailbox,
            queue: DemoQueue::seeded(),
            scene_time: 1.5,
            save_fails: false,
            calls: Arc::new(Mutex::new(Vec::new())),
            held: Vec::new(),
            camera_in_use: "demo".into(),
        }
    }

    fn record(&self, call: Call) {
        lock(&self.calls).push(call);
    }
}

impl Services for StillServices {
    fn is_demo(&self) -> bool {
        true
    }

    fn start_camera(&mut self, mode: CameraMode, session: u64) {
        self.record(Call::StartCamera(mode));
        self.mailbox.post_frame(session, demo_frame(mode, self.scene_time, PREVIEW_W, PREVIEW_H));
        let (ready, hint) = scripted_verdict(mode, self.scene_time);
        self.mailbox.post_verdict(session, ready, Some(hint.to_string()));
    }

    fn stop_camera(&mut self) {
        self.record(Call::StopCamera);
    }

    fn capture(&mut self, target: CaptureTarget, session: u64) {
        self.record(Call::Capture(target));
        self.held.retain(|t| *t != target);
        self.held.push(target);
        post_capture(&self.mailbox, target, session);
    }

    fn drop_capture(&mut self, target: CaptureTarget) {
        self.record(Call::Drop(target));
        self.held.retain(|t| *t != target);
    }

    fn enqueue(&mut self, session: u64, email: Email, _phone: Phone, supersedes: Option<String>) {
        self.record(Call::Enqueue(email.as_str().to_string(), supersedes));
        if self.save_fails {
            self.mailbox.post_event(Event::SaveFailed { session });
        } else {
            let reference = self.queue.add();
            self.mailbox.post_event(Event::Saved { session, reference });
        }
    }

    fn wipe(&mut self) {
        self.record(Call::Wipe);
        self.held.clear();
    }

    fn queue_items(&mut self) -> Result<Vec<QueueItem>, ServiceError> {
        Ok(self.queue.list())
    }

    fn queue_alerts(&mut self) -> QueueAlerts {
        QueueAlerts::default()
    }

    fn acknowledge(&mut self, _which: crate::queue::Acknowledgeable) -> Result<(), ServiceError> {
        // The demo queue raises no alert that needs acknowledging.
        Ok(())
    }

    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.record(Call::Retry(reference.into()));
        self.queue.retry(reference)
    }

    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.record(Call::Purge(reference.into()));
        self.queue.purge(reference)
    }

    fn list_cameras(&mut self) {
        post_demo_cameras(&self.mailbox, &self.camera_in_use);
    }

    fn console_camera(&mut self, id: Option<&str>, face: bool) {
        self.record(Call::ConsoleCamera(id.map(str::to_string)));
        if id.is_some() {
            post_demo_console_camera(&self.mailbox, face);
        }
    }

    fn use_camera(&mut self, id: &str) {
        self.record(Call::UseCamera(id.into()));
        self.camera_in_use = id.to_string();
        post_demo_cameras(&self.mailbox, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripted_guidance_ends_ready() {
        for mode in [CameraMode::Document, CameraMode::Face] {
            let hints: Vec<&str> = (0..8).map(|i| scripted_verdict(mode, i as f32 * 0.5).1).collect();
            assert!(!scripted_verdict(mode, 0.0).0);
            assert_eq!(scripted_verdict(mode, READY_AFTER), (true, "looks_good"));
            assert!(hints.windows(2).filter(|w| w[0] != w[1]).count() >= 3, "{hints:?}");
        }
    }

    #[test]
    fn frames_show_a_subject_that_moves() {
        let a = demo_frame(CameraMode::Face, 0.0, 64, 36);
        let b = demo_frame(CameraMode::Face, 3.0, 64, 36);
        assert_eq!((a.width(), a.height()), (64, 36));
        assert_ne!(a.as_bytes(), b.as_bytes());
        // The settled face covers the centre with skin tone.
        let c = b.as_slice()[(18 * 64 + 32) as usize];
        assert!(c.r > 200 && c.g > 150, "{c:?}");
    }

    #[test]
    fn queue_retry_and_purge_report_unknown_references() {
        let mut q = DemoQueue::seeded();
        let r = q.add();
        assert_eq!(q.pending(), 3);
        q.retry(&r).unwrap();
        q.purge(&r).unwrap();
        assert_eq!(q.purge(&r), Err(ServiceError::NotFound(r.clone())));
        assert_eq!(q.retry("nope"), Err(ServiceError::NotFound("nope".into())));
    }
}
