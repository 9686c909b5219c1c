//! [`LiveServices`]: the real camera (`crate::camera::CameraWorker`), the real on-device checks (`crate::capture`:
//! quality checks, auto-capture, JPEG encoding to the budget) and the real durable queue ([`QueueLink`] over
//! `crate::queue::QueueHandle`; the uploader that sends it is started by the caller) behind [`Services`]. The
//! encoded photos are held in memory until the flow drops or retakes them, or the session is wiped: a save does not
//! drop them, because a retry prompt after the save sends the customer back for one photo and the next save needs
//! the others (every session ends in a wipe, so they never outlive it).
//!
//! Threads: one "ui-capture" thread owns the camera worker, the checker and the held photos; the UI thread sends it
//! commands through a bounded channel and never waits for it (except a bounded join at shutdown). A "ui-preview"
//! thread scales (and, for the face, mirrors) every new frame and posts it, so the checks never hold the preview
//! back and the UI thread only wraps pixels into an image. Saving runs on a "ui-enqueue" thread and the queue's
//! events come back on a "ui-queue-events" thread (see [`QueueLink`]).

use super::queue_link::QueueLink;
use super::services::{Mailbox, QueueAlerts, QueueItem, Report, ServiceError, Services};
use crate::camera::{CameraConfig, CameraWorker, FrameTap, SourceSetting};
use crate::capture::{AutoCapture, CaptureConfig, CheckedCapture, Mode, QualityChecker};
use crate::contact::{Email, Phone};
use crate::encode::{EncodeConfig, UploadJpeg, encode_checked};
use crate::flow::{CameraMode, CaptureTarget, Event};
use crate::queue::{NewEnrollment, QueueHandle};
use image::RgbImage;
use slint::{Rgb8Pixel, SharedPixelBuffer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Commands waiting for the capture thread beyond this block the sender briefly; the UI sends a few per screen.
const COMMAND_CAPACITY: usize = 32;
/// The preview sent to the UI is at most this wide.
const PREVIEW_MAX_W: u32 = 640;
/// Review thumbnails are at most this wide.
const THUMB_MAX_W: u32 = 320;
/// The quality checks run at most this often (face detection costs tens of milliseconds).
const CHECK_INTERVAL: Duration = Duration::from_millis(150);
/// How long the thread waits for a newer frame before looking at its commands again.
const FRAME_WAIT: Duration = Duration::from_millis(100);
/// How long the thread sleeps on commands while no capture screen is shown.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Deadline for the checker (the face model) to load.
const CHECKER_START: Duration = Duration::from_secs(20);
/// Deadline for the camera worker to stop.
const CAMERA_STOP: Duration = Duration::from_secs(2);

enum Command {
    Start(CameraMode, u64),
    Stop,
    Capture(CaptureTarget, u64),
    Drop(CaptureTarget),
    Wipe,
    /// Save the held photos of `session` with these contact details.
    Enqueue {
        session: u64,
        email: Email,
        phone: Phone,
    },
}

/// The real camera, checks and queue. See the module header.
pub struct LiveServices {
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    demo_camera: Arc<AtomicBool>,
    link: Arc<QueueLink>,
}

impl LiveServices {
    /// Starts the capture thread (the camera opens on the first capture screen) with applications saved in
    /// `queue` (whose events it follows; start the uploader on the same queue to send them). Fails only if the
    /// checker cannot be built (a bad `[capture]` section), the queue has stopped, or a thread cannot start.
    pub fn new(
        mailbox: Arc<Mailbox>,
        camera: CameraConfig,
        capture: CaptureConfig,
        encode: EncodeConfig,
        queue: QueueHandle,
    ) -> Result<LiveServices, String> {
        let link = Arc::new(QueueLink::new(queue, mailbox.clone()).map_err(|e| format!("the queue: {e}"))?);
        let worker_link = link.clone();
        // Until the camera opens, the setting says whether it is the demo (`auto` may fall back to it).
        let demo_camera = Arc::new(AtomicBool::new(matches!(camera.source, SourceSetting::Demo)));
        let worker_demo = demo_camera.clone();
        let (tx, rx) = sync_channel(COMMAND_CAPACITY);
        // The checker holds the face detector, which is not `Send`: it is built on the thread that uses it.
        let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
        let mb = mailbox.clone();
        let thread = std::thread::Builder::new()
            .name("ui-capture".into())
            .spawn(move || {
                let checker = match QualityChecker::new(&capture) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("capture checks: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let worker = Worker {
                    mailbox: mb,
                    camera_config: camera,
                    camera: None,
                    tap: None,
                    checker,
                    auto: AutoCapture::new(capture.auto_frames),
                    encode,
                    active: None,
                    shown: Arc::new(Mutex::new(None)),
                    preview: None,
                    last_seq: 0,
                    last_check: None,
                    ready: None,
                    held: Vec::new(),
                    link: worker_link,
                    demo_camera: worker_demo,
                };
                worker.run(rx)
            })
            .map_err(|e| format!("cannot start the capture thread: {e}"))?;
        match ready_rx.recv_timeout(CHECKER_START) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => return Err("the capture checks did not start in time".into()),
        }
        Ok(LiveServices { commands: Some(tx), thread: Some(thread), demo_camera, link })
    }

    fn send(&self, c: Command) {
        if let Some(tx) = &self.commands
            && tx.send(c).is_err()
        {
            log::error!("the capture thread has stopped; the camera screens cannot work");
        }
    }
}

impl Services for LiveServices {
    fn is_demo(&self) -> bool {
        self.demo_camera.load(Ordering::SeqCst)
    }

    fn start_camera(&mut self, mode: CameraMode, session: u64) {
        self.send(Command::Start(mode, session));
    }

    fn stop_camera(&mut self) {
        self.send(Command::Stop);
    }

    fn capture(&mut self, target: CaptureTarget, session: u64) {
        self.send(Command::Capture(target, session));
    }

    fn drop_capture(&mut self, target: CaptureTarget) {
        self.send(Command::Drop(target));
    }

    fn enqueue(&mut self, session: u64, email: Email, phone: Phone, supersedes: Option<String>) {
        if let Some(old) = supersedes {
            // The earlier application stays in the queue (needs_user) for the operator to purge or follow up.
            log::info!("the new application of this session replaces {old}");
        }
        self.send(Command::Enqueue { session, email, phone });
    }

    fn wipe(&mut self) {
        self.send(Command::Wipe);
    }

    fn queue_items(&mut self) -> Result<Vec<QueueItem>, ServiceError> {
        self.link.items()
    }

    fn queue_alerts(&mut self) -> QueueAlerts {
        self.link.alerts()
    }

    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.link.retry(reference)
    }

    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.link.purge(reference)
    }
}

impl Drop for LiveServices {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop within IDLE_WAIT or FRAME_WAIT, then it stops the camera
        // within CAMERA_STOP: the join is bounded.
        self.commands.take();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("the capture thread panicked");
        }
    }
}

/// The capture thread's state.
struct Worker {
    mailbox: Arc<Mailbox>,
    camera_config: CameraConfig,
    camera: Option<CameraWorker>,
    tap: Option<FrameTap>,
    checker: QualityChecker,
    auto: AutoCapture,
    encode: EncodeConfig,
    active: Option<(CameraMode, u64)>,
    /// What the preview thread shows (mode and session), `None` while no capture screen is up.
    shown: Arc<Mutex<Option<(CameraMode, u64)>>>,
    preview: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    last_seq: u64,
    last_check: Option<Instant>,
    /// A document capture the auto-capture already took, waiting for the flow's capture request.
    ready: Option<CheckedCapture>,
    /// The photos taken, with the session they were taken for.
    held: Vec<(CaptureTarget, u64, UploadJpeg)>,
    link: Arc<QueueLink>,
    /// Whether the open camera is the bundled demo (shared with [`LiveServices::is_demo`]).
    demo_camera: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let next = if self.active.is_some() {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match rx.recv_timeout(IDLE_WAIT) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            if let Some(c) = next {
                self.command(c);
            }
            if let Some((mode, session)) = self.active {
                self.frame(mode, session);
            }
        }
        self.held.clear();
        self.set_shown(None);
        if let Some((stop, handle)) = self.preview.take() {
            stop.store(true, Ordering::SeqCst);
            // The preview loop checks the flag at least every FRAME_WAIT: the join is bounded.
            if handle.join().is_err() {
                log::error!("the preview thread panicked");
            }
        }
        if let Some(cam) = self.camera.take()
            && let Err(e) = cam.shutdown(CAMERA_STOP)
        {
            log::warn!("the camera did not stop cleanly: {e}");
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Start(mode, session) => {
                self.active = Some((mode, session));
                self.set_shown(self.active);
                self.auto.reset();
                self.ready = None;
                self.last_check = None;
                self.open_camera();
            }
            Command::Stop => {
                self.active = None;
                self.set_shown(None);
                self.auto.reset();
                self.ready = None;
            }
            Command::Capture(target, session) => self.capture(target, session),
            Command::Drop(target) => self.held.retain(|(t, _, _)| *t != target),
            Command::Wipe => {
                self.active = None;
                self.set_shown(None);
                self.auto.reset();
                self.ready = None;
                self.held.clear();
            }
            Command::Enqueue { session, email, phone } => self.enqueue(session, email, phone),
        }
    }

    /// Builds the application from the photos held for `session` and saves it on the queue's helper thread. The
    /// photos stay held: after a retry prompt the customer retakes one of them and the others are saved again.
    fn enqueue(&mut self, session: u64, email: Email, phone: Phone) {
        let photo = |target: CaptureTarget| {
            self.held.iter().find(|(t, s, _)| *t == target && *s == session).map(|(_, _, j)| j.clone())
        };
        let (Some(front), Some(face)) = (photo(CaptureTarget::DocumentFront), photo(CaptureTarget::Face)) else {
            log::error!("cannot save the application: the document front or the face photo is not held");
            self.mailbox.post_event(Event::SaveFailed { session });
            return;
        };
        let back = photo(CaptureTarget::DocumentBack);
        let new = NewEnrollment { email, phone, front, back, side: None, face };
        self.link.enqueue(session, new, || {});
    }

    fn open_camera(&mut self) {
        if self.camera.is_some() {
            return;
        }
        match CameraWorker::spawn(&self.camera_config) {
            Ok(cam) => {
                log::info!("camera open: {}", cam.describe());
                self.demo_camera.store(cam.is_demo(), Ordering::SeqCst);
                self.tap = Some(cam.tap());
                self.start_preview(cam.tap());
                self.camera = Some(cam);
            }
            Err(e) => log::error!("cannot open the camera: {e}"),
        }
    }

    /// The check mode for the current screen: the document's front until it is held, then its back (the order
    /// the flow takes them in).
    fn check_mode(&self, mode: CameraMode) -> Mode {
        match mode {
            CameraMode::Face => Mode::Face,
            CameraMode::Document if self.held.iter().any(|(t, _, _)| *t == CaptureTarget::DocumentFront) => {
                Mode::DocumentBack
            }
            CameraMode::Document => Mode::DocumentFront,
        }
    }

    fn set_shown(&self, v: Option<(CameraMode, u64)>) {
        *self.shown.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// The preview runs on its own thread so the checks (tens of milliseconds) never hold a frame back: it scales
    /// every new frame for display and posts it, tagged with the session on screen.
    fn start_preview(&mut self, tap: FrameTap) {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, shown, mailbox) = (stop.clone(), self.shown.clone(), self.mailbox.clone());
        let spawned = std::thread::Builder::new().name("ui-preview".into()).spawn(move || {
            let mut last = 0;
            while !flag.load(Ordering::SeqCst) {
                let Ok(frame) = tap.wait_newer(last, FRAME_WAIT) else { continue };
                last = frame.seq;
                let on_screen = *shown.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((mode, session)) = on_screen {
                    mailbox.post_frame(session, pixels(&frame.image, PREVIEW_MAX_W, mode == CameraMode::Face));
                }
            }
        });
        match spawned {
            Ok(handle) => self.preview = Some((stop, handle)),
            Err(e) => log::error!("cannot start the preview thread: {e}"),
        }
    }

    /// Runs the checks on the newest frame, at most every [`CHECK_INTERVAL`].
    fn frame(&mut self, mode: CameraMode, session: u64) {
        let wait = self.last_check.map_or(Duration::ZERO, |t| CHECK_INTERVAL.saturating_sub(t.elapsed()));
        if !wait.is_zero() || self.ready.is_some() {
            std::thread::sleep(wait.max(Duration::from_millis(20)).min(FRAME_WAIT));
            return;
        }
        let Some(tap) = &self.tap else {
            std::thread::sleep(FRAME_WAIT);
            return;
        };
        let frame = match tap.wait_newer(self.last_seq, FRAME_WAIT) {
            Ok(f) => f,
            Err(e) => {
                log::debug!("no camera frame: {e}");
                return;
            }
        };
        self.last_seq = frame.seq;
        self.last_check = Some(Instant::now());
        let check = self.check_mode(mode);
        let assessment = self.checker.assess(check, frame.image.clone());
        let accepted = assessment.verdict().accepted;
        let hint = assessment.verdict().hints.first().map(|h| h.code().to_string());
        match mode {
            // The flow runs the countdown and asks for the capture; a bad frame cancels it.
            CameraMode::Face => {
                self.mailbox.post_verdict(session, accepted, if accepted { Some("looks_good".into()) } else { hint })
            }
            // The auto-capture keeps the sharpest of several good frames; ready once it has them.
            CameraMode::Document => match self.auto.push(assessment) {
                Some(c) => {
                    self.ready = Some(c);
                    self.mailbox.post_verdict(session, true, Some("looks_good".into()));
                }
                None => {
                    self.mailbox.post_verdict(session, false, if accepted { Some("hold_still".into()) } else { hint })
                }
            },
        }
    }

    fn capture(&mut self, target: CaptureTarget, session: u64) {
        let mode = match target {
            CaptureTarget::DocumentFront => Mode::DocumentFront,
            CaptureTarget::DocumentBack => Mode::DocumentBack,
            CaptureTarget::Face => Mode::Face,
        };
        let reject = |hint: Option<String>| Event::CaptureRejected { session, target, hint };
        let checked = match self.ready.take().filter(|c| c.mode() == mode) {
            Some(c) => c,
            None => {
                let Some(frame) = self.tap.as_ref().and_then(FrameTap::latest) else {
                    // No frame yet (the camera is still opening, or failed to open).
                    self.mailbox.post_event(reject(None));
                    return;
                };
                match self.checker.capture(mode, frame.image.clone()) {
                    Ok(c) => c,
                    Err(v) => {
                        self.mailbox.post_event(reject(v.hints.first().map(|h| h.code().to_string())));
                        return;
                    }
                }
            }
        };
        match encode_checked(&checked, &self.encode) {
            Ok(jpeg) => {
                self.held.retain(|(t, _, _)| *t != target);
                self.held.push((target, session, jpeg));
                let thumb = pixels(checked.image(), THUMB_MAX_W, mode == Mode::Face);
                self.mailbox.post(Report::Thumbnail { session, target, pixels: thumb });
                self.mailbox.post_event(Event::Captured { session, target });
            }
            Err(e) => {
                log::error!("cannot encode the {target:?} photo: {e}");
                self.mailbox.post_event(reject(None));
            }
        }
    }
}

/// A copy of `img` at most `max_w` wide for display, mirrored for the face (people expect a mirror).
fn pixels(img: &RgbImage, max_w: u32, mirror: bool) -> SharedPixelBuffer<Rgb8Pixel> {
    let (w, h) = img.dimensions();
    let scaled = if w > max_w {
        let nh = ((h as u64 * max_w as u64) / w.max(1) as u64).max(1) as u32;
        image::imageops::thumbnail(img, max_w, nh)
    } else {
        img.clone()
    };
    let shown = if mirror { image::imageops::flip_horizontal(&scaled) } else { scaled };
    SharedPixelBuffer::clone_from_slice(shown.as_raw(), shown.width(), shown.height())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::SourceSetting;

    #[test]
    fn preview_pixels_are_scaled_and_mirrored() {
        let mut img = RgbImage::new(1280, 720);
        img.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        let p = pixels(&img, 640, true);
        assert_eq!((p.width(), p.height()), (640, 360));
        let small = pixels(&RgbImage::new(320, 180), 640, false);
        assert_eq!((small.width(), small.height()), (320, 180));
    }

    #[test]
    fn demo_camera_frames_and_verdicts_reach_the_mailbox() {
        let mailbox = Mailbox::new(|| {});
        let camera = CameraConfig { source: SourceSetting::Demo, ..CameraConfig::default() };
        let dir = tempfile::tempdir().unwrap();
        let q = QueueHandle::open(dir.path(), &crate::queue::QueueConfig::default(), Duration::from_secs(60)).unwrap();
        let mut live =
            LiveServices::new(mailbox.clone(), camera, CaptureConfig::default(), EncodeConfig::default(), q.clone())
                .unwrap();
        assert!(live.is_demo(), "the demo camera is the only demo part");
        assert_eq!(live.queue_items().unwrap(), vec![]);
        assert_eq!(live.queue_alerts(), QueueAlerts::default());
        live.start_camera(CameraMode::Face, 7);
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut frame, mut verdict) = (false, false);
        while Instant::now() < deadline && !(frame && verdict) {
            let (f, reports) = mailbox.take();
            frame |= f.is_some_and(|f| f.session == 7 && f.pixels.width() <= PREVIEW_MAX_W);
            verdict |= reports.iter().any(|r| matches!(r, Report::Event(Event::Verdict { session: 7, .. })));
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(frame, "no preview frame");
        assert!(verdict, "no verdict");
        live.stop_camera();
        drop(live);
        q.shutdown();
    }
}
