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

use super::camera_choice::CameraChoice;
use super::console::{CameraKind, CameraOption, ConsoleReport};
use super::queue_link::QueueLink;
use super::services::{Mailbox, QueueAlerts, QueueItem, Report, ServiceError, Services};
use crate::camera::{CameraConfig, CameraWorker, DemoScene, DeviceInfo, FrameTap, Planned, Scene, SourceSetting};
use crate::capture::{AutoCapture, CaptureConfig, CheckedCapture, Mode, QualityChecker};
use crate::contact::{Email, Phone};
use crate::encode::{EncodeConfig, UploadJpeg, encode_checked};
use crate::flow::{CameraMode, CaptureTarget, Event};
use crate::queue::{NewEnrollment, QueueHandle, State};
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
/// The operator console's camera checks run at most this often (they are for reading, not for capturing).
const CONSOLE_CHECK_INTERVAL: Duration = Duration::from_millis(400);
/// While no capture screen is shown, the capture thread looks for the customer camera this often: an unplugged
/// camera puts the kiosk out of service, and plugging one in brings it back without anyone restarting it.
const CAMERA_PROBE_INTERVAL: Duration = Duration::from_secs(3);

enum Command {
    Start(CameraMode, u64),
    Stop,
    Capture(CaptureTarget, u64),
    Drop(CaptureTarget),
    Wipe,
    /// Save the held photos of `session` with these contact details; once saved, the application it replaces (the
    /// same customer's earlier attempt, stopped on an error) is purged.
    Enqueue {
        session: u64,
        email: Email,
        phone: Phone,
        supersedes: Option<String>,
    },
    /// Post the camera choices for the operator console.
    ListCameras,
    /// Show this camera (an option id) on the console, face or document checks; `None` stops it.
    ConsoleCamera(Option<(String, bool)>),
    /// The customer screens use this camera (an option id) from now on.
    UseCamera(String),
    /// Keep looking for the customer camera while no capture screen is shown (the kiosk, not the desktop console).
    WatchCamera,
    /// Remember the operator's next camera choices here; the customer screens use this camera (the remembered
    /// choice) if there is one.
    Remember(CameraChoice, Option<CameraConfig>),
}

/// Who the preview thread shows frames to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A customer capture screen of this mode and session.
    Customer(CameraMode, u64),
    /// The operator console's camera page.
    Console,
}

/// The real camera, checks and queue. See the module header.
pub struct LiveServices {
    /// The camera the configuration names.
    configured_camera: CameraConfig,
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
        // Until the camera opens, the setting says whether it will be the demo (`auto` falls back to it in demo mode
        // when no camera is found), so the DEMO badge is right from the first screen.
        let demo_camera = Arc::new(AtomicBool::new(will_be_demo(&camera)));
        let configured = camera.clone();
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
                    configured_camera: camera.clone(),
                    camera_config: camera,
                    camera: None,
                    open_config: None,
                    tap: None,
                    checker,
                    auto: AutoCapture::new(capture.auto_frames),
                    encode,
                    active: None,
                    console: None,
                    shown: Arc::new(Mutex::new(None)),
                    preview: None,
                    last_seq: 0,
                    last_check: None,
                    ready: None,
                    held: Vec::new(),
                    link: worker_link,
                    demo_camera: worker_demo,
                    choice: None,
                    scene: DemoScene::default(),
                    camera_status: CameraStatus::Unknown,
                    watch_camera: false,
                    last_probe: None,
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
        Ok(LiveServices { configured_camera: configured, commands: Some(tx), thread: Some(thread), demo_camera, link })
    }

    /// Remembers the operator's camera choices in `choice` from now on, and uses the one remembered there (made
    /// over the camera configured now) instead of the configured camera. Call once, before the first capture
    /// screen; reads a small file on the calling thread.
    pub fn remember_camera(&mut self, choice: CameraChoice) {
        let chosen = choice.load(&option_id(&self.configured_camera)).and_then(|id| {
            match config_for(&id, &self.configured_camera) {
                Some(config) => {
                    log::info!("camera: the operator's choice {id} (remembered in {})", choice.path().display());
                    Some(config)
                }
                None => {
                    log::warn!("ignoring the remembered camera choice {id}: it is not offered any more");
                    None
                }
            }
        });
        if let Some(config) = &chosen {
            self.demo_camera.store(matches!(config.source, SourceSetting::Demo), Ordering::SeqCst);
        }
        self.send(Command::Remember(choice, chosen));
    }

    /// From now on, while no capture screen is shown, the capture thread looks for the customer camera every
    /// [`CAMERA_PROBE_INTERVAL`] (the first time at once): a camera that is missing or does not open puts the kiosk
    /// out of service ([`Report::CameraStatus`]) until it works again. For the kiosk
    /// only: the desktop operator console must not hold the camera another process may be using.
    pub fn watch_camera(&self) {
        self.send(Command::WatchCamera);
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
        self.send(Command::Enqueue { session, email, phone, supersedes });
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

    fn acknowledge(&mut self, which: crate::queue::Acknowledgeable) -> Result<(), ServiceError> {
        self.link.acknowledge(which)
    }

    fn retry(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.link.retry(reference)
    }

    fn purge(&mut self, reference: &str) -> Result<(), ServiceError> {
        self.link.purge(reference)
    }

    fn list_cameras(&mut self) {
        self.send(Command::ListCameras);
    }

    fn console_camera(&mut self, id: Option<&str>, face: bool) {
        self.send(Command::ConsoleCamera(id.map(|i| (i.to_string(), face))));
    }

    fn use_camera(&mut self, id: &str) {
        self.send(Command::UseCamera(id.to_string()));
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
    /// The camera the configuration names (the console offers it, and its replay path, whatever is in use).
    configured_camera: CameraConfig,
    /// The camera the customer screens use.
    camera_config: CameraConfig,
    camera: Option<CameraWorker>,
    /// The configuration the open camera was opened with.
    open_config: Option<CameraConfig>,
    tap: Option<FrameTap>,
    checker: QualityChecker,
    auto: AutoCapture,
    encode: EncodeConfig,
    active: Option<(CameraMode, u64)>,
    /// The camera previewed on the operator console and the checks it runs, while the console shows it.
    console: Option<(CameraConfig, Mode)>,
    /// Who the preview thread shows frames to, `None` while no capture screen or console preview is up.
    shown: Arc<Mutex<Option<Shown>>>,
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
    /// Where the operator's camera choice is remembered, once [`LiveServices::remember_camera`] gave it.
    choice: Option<CameraChoice>,
    /// What the demo camera shows, when the demo camera is in use: what the screen asks for.
    scene: DemoScene,
    /// Whether the customer camera is available, as last reported to the UI.
    camera_status: CameraStatus,
    /// Whether the customer camera is looked for while idle (see [`LiveServices::watch_camera`]).
    watch_camera: bool,
    /// When the customer camera was last looked for.
    last_probe: Option<Instant>,
}

/// The customer camera's availability, as the capture thread last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CameraStatus {
    /// Not looked for yet.
    Unknown,
    /// Found (or the configured replay or demo frames).
    Available,
    /// None found, or none matches the configuration.
    Missing(String),
    /// Found, but it did not open: the next probe opens it again to know whether it recovered.
    Failed(String),
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
            } else if let Some(mode) = self.console.as_ref().map(|(_, mode)| *mode) {
                self.console_frame(mode);
            } else if self.watch_camera && self.last_probe.is_none_or(|t| t.elapsed() >= CAMERA_PROBE_INTERVAL) {
                self.probe_camera();
            }
        }
        self.held.clear();
        self.set_shown(None);
        self.close_camera();
    }

    /// Stops the preview thread and the camera.
    fn close_camera(&mut self) {
        if let Some((stop, handle)) = self.preview.take() {
            stop.store(true, Ordering::SeqCst);
            // The preview loop checks the flag at least every FRAME_WAIT: the join is bounded.
            if handle.join().is_err() {
                log::error!("the preview thread panicked");
            }
        }
        self.tap = None;
        self.open_config = None;
        if let Some(cam) = self.camera.take()
            && let Err(e) = cam.shutdown(CAMERA_STOP)
        {
            log::warn!("the camera did not stop cleanly: {e}");
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Start(mode, session) => {
                self.console = None;
                self.active = Some((mode, session));
                self.set_shown(Some(Shown::Customer(mode, session)));
                self.auto.reset();
                self.ready = None;
                self.last_check = None;
                self.scene.set(scene_for(self.check_mode(mode)));
                let config = self.camera_config.clone();
                self.open_camera(&config);
            }
            Command::ListCameras => self.post_cameras(),
            Command::WatchCamera => self.watch_camera = true,
            Command::ConsoleCamera(None) => {
                if self.console.take().is_some() && self.active.is_none() {
                    self.set_shown(None);
                    self.close_camera();
                }
            }
            Command::ConsoleCamera(Some((id, face))) => {
                if self.active.is_some() {
                    log::warn!("the console asked for the camera while a customer capture screen is shown");
                    return;
                }
                let Some(config) = config_for(&id, &self.configured_camera) else {
                    self.post_console(ConsoleReport::CameraFailed(format!("no camera {id}")));
                    return;
                };
                let mode = if face { Mode::Face } else { Mode::DocumentFront };
                self.scene.set(scene_for(mode));
                self.console = Some((config.clone(), mode));
                self.set_shown(Some(Shown::Console));
                self.last_check = None;
                self.open_camera(&config);
            }
            Command::UseCamera(id) => match config_for(&id, &self.configured_camera) {
                Some(config) => {
                    log::info!("operator: the customer screens now use camera {id}");
                    self.camera_config = config;
                    if let Some(choice) = &self.choice
                        && let Err(e) = choice.save(&option_id(&self.configured_camera), &id)
                    {
                        log::error!("cannot remember the camera choice in {}: {e}", choice.path().display());
                    }
                    self.post_cameras();
                }
                None => self.post_console(ConsoleReport::CameraFailed(format!("no camera {id}"))),
            },
            Command::Remember(choice, chosen) => {
                if let Some(config) = chosen {
                    self.camera_config = config;
                }
                self.choice = Some(choice);
            }
            Command::Stop => {
                self.active = None;
                self.set_shown(None);
                // The camera closes when no capture screen is shown: its light goes off between customers.
                self.close_camera();
                self.auto.reset();
                self.ready = None;
            }
            Command::Capture(target, session) => self.capture(target, session),
            Command::Drop(target) => self.held.retain(|(t, _, _)| *t != target),
            Command::Wipe => {
                self.active = None;
                self.console = None;
                self.set_shown(None);
                self.auto.reset();
                self.ready = None;
                self.held.clear();
                self.close_camera();
            }
            Command::Enqueue { session, email, phone, supersedes } => self.enqueue(session, email, phone, supersedes),
        }
    }

    /// Builds the application from the photos held for `session` and saves it on the queue's helper thread; once
    /// it is committed, the application it supersedes is purged. The photos stay held: after a retry prompt the
    /// customer retakes one of them and the others are saved again.
    fn enqueue(&mut self, session: u64, email: Email, phone: Phone, supersedes: Option<String>) {
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
        let queue = self.link.handle().clone();
        self.link.enqueue(session, new, move || {
            if let Some(old) = supersedes {
                purge_superseded(&queue, &old);
            }
        });
    }

    /// Opens the camera `config` describes, closing another one first (the console may have opened a different one).
    fn open_camera(&mut self, config: &CameraConfig) {
        if self.camera.is_some() && self.open_config.as_ref() == Some(config) {
            return;
        }
        self.close_camera();
        match CameraWorker::spawn_in(config, self.scene.clone()) {
            Ok(cam) => {
                log::info!("camera open: {}", cam.describe());
                // Before the status: the fleet metrics tell the demo pictures from a camera.
                self.demo_camera.store(cam.is_demo(), Ordering::SeqCst);
                if self.console.is_none() {
                    self.set_camera_status(CameraStatus::Available);
                }
                self.tap = Some(cam.tap());
                self.start_preview(cam.tap());
                self.camera = Some(cam);
                self.open_config = Some(config.clone());
            }
            Err(e) => {
                log::error!("cannot open the camera: {e}");
                if self.console.is_some() {
                    self.post_console(ConsoleReport::CameraFailed(e.to_string()));
                } else {
                    let status = match e {
                        crate::camera::CameraError::NoDevice(why) => CameraStatus::Missing(why),
                        other => CameraStatus::Failed(other.to_string()),
                    };
                    self.set_camera_status(status);
                }
            }
        }
    }

    /// Looks for the customer camera while no capture screen is shown: one that is missing or does not match the
    /// configuration is unavailable; one not yet known to work is opened and closed to find out; one that works is
    /// not opened again.
    fn probe_camera(&mut self) {
        self.last_probe = Some(Instant::now());
        let config = self.camera_config.clone();
        let devices = match &config.source {
            SourceSetting::Auto | SourceSetting::Device => match crate::camera::device::list_devices() {
                Ok(d) => d,
                Err(e) => {
                    self.set_camera_status(CameraStatus::Missing(e.to_string()));
                    return;
                }
            },
            SourceSetting::Demo | SourceSetting::Replay(_) => Vec::new(),
        };
        match crate::camera::plan(&config, &devices) {
            Planned::Unavailable(why) => self.set_camera_status(CameraStatus::Missing(why)),
            // Found, and it worked last time: it is not opened again (its light stays off between customers).
            _ if self.camera_status == CameraStatus::Available => {}
            // Not yet known to work (the first look at start, or after it was missing or failed): opened and closed
            // at once, so "available" means a camera that delivers; `open_camera` reports the outcome.
            _ => {
                self.open_camera(&config);
                self.close_camera();
            }
        }
    }

    /// Reports a change of the customer camera's availability to the UI (the flow and the console) and the log.
    fn set_camera_status(&mut self, status: CameraStatus) {
        if status == self.camera_status {
            return;
        }
        let reason = match &status {
            CameraStatus::Unknown | CameraStatus::Available => None,
            CameraStatus::Missing(why) | CameraStatus::Failed(why) => Some(why.clone()),
        };
        match (&reason, &self.camera_status) {
            (Some(why), _) => log::error!(error_code = "camera_unavailable";
                "the camera is unavailable, the kiosk takes no customer until it is: {why}"),
            (None, CameraStatus::Missing(_) | CameraStatus::Failed(_)) => {
                log::info!("the camera is available again: the kiosk takes customers")
            }
            (None, _) => {}
        }
        crate::metrics::set_camera(match &status {
            CameraStatus::Unknown => crate::metrics::CameraState::Unknown,
            CameraStatus::Available if self.demo_camera.load(Ordering::SeqCst) => crate::metrics::CameraState::Demo,
            CameraStatus::Available => crate::metrics::CameraState::Connected,
            CameraStatus::Missing(_) | CameraStatus::Failed(_) => crate::metrics::CameraState::Unavailable,
        });
        self.camera_status = status;
        self.mailbox.post(Report::CameraStatus(reason));
    }

    fn post_console(&self, report: ConsoleReport) {
        self.mailbox.post(Report::Console(report));
    }

    /// Lists the choices (finding the devices may take a moment: it runs here, not on the UI thread).
    fn post_cameras(&self) {
        let devices = match crate::camera::device::list_devices() {
            Ok(d) => d,
            Err(e) => {
                log::debug!("no camera list: {e}");
                Vec::new()
            }
        };
        let (options, in_use) = camera_options(&self.configured_camera, &self.camera_config, &devices);
        self.post_console(ConsoleReport::Cameras { options, in_use, remembered: self.choice.is_some() });
    }

    /// The console's checks on the newest frame, at most every [`CONSOLE_CHECK_INTERVAL`].
    fn console_frame(&mut self, mode: Mode) {
        let wait = self.last_check.map_or(Duration::ZERO, |t| CONSOLE_CHECK_INTERVAL.saturating_sub(t.elapsed()));
        if !wait.is_zero() {
            std::thread::sleep(wait.min(FRAME_WAIT));
            return;
        }
        let Some(tap) = &self.tap else {
            std::thread::sleep(FRAME_WAIT);
            return;
        };
        let Ok(frame) = tap.wait_newer(self.last_seq, FRAME_WAIT) else { return };
        self.last_seq = frame.seq;
        self.last_check = Some(Instant::now());
        let assessment = self.checker.assess(mode, frame.image.clone());
        let v = assessment.verdict();
        self.post_console(ConsoleReport::CameraCheck {
            accepted: v.accepted,
            hint: v.main_hint().map(|h| h.code().to_string()),
            metrics: v.metric_rows(),
        });
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

    fn set_shown(&self, v: Option<Shown>) {
        if let Some(Shown::Customer(mode, _)) = v {
            self.scene.set(scene_for(self.check_mode(mode)));
        }
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
                match on_screen {
                    Some(Shown::Customer(mode, session)) => mailbox
                        .post_frame(session, preview_pixels(&frame.image, PREVIEW_MAX_W, mode == CameraMode::Face)),
                    Some(Shown::Console) => {
                        mailbox.post_console_frame(preview_pixels(&frame.image, PREVIEW_MAX_W, false))
                    }
                    None => {}
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
        // After the front is held the same screen asks for the back: the demo camera turns the card over.
        self.scene.set(scene_for(check));
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
                let thumb = preview_pixels(checked.image(), THUMB_MAX_W, mode == Mode::Face);
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

/// Whether `config` selects the demo frames (looks for devices: call off the UI thread or once at start).
fn will_be_demo(config: &CameraConfig) -> bool {
    match config.source {
        SourceSetting::Demo => true,
        SourceSetting::Auto if config.demo_fallback => {
            crate::camera::device::list_devices().map_or(true, |devices| devices.is_empty())
        }
        _ => false,
    }
}

/// What the demo camera shows for a check mode: the card's front or back, or the face.
fn scene_for(mode: Mode) -> Scene {
    match mode {
        Mode::Face => Scene::Face,
        Mode::DocumentFront => Scene::DocumentFront,
        Mode::DocumentBack => Scene::DocumentBack,
    }
}

/// Purges the customer's earlier attempt once its replacement is saved: it stopped on an error the customer has
/// just fixed, and keeping it would leave a second copy of their photos and a false follow-up for the operator. Only
/// an attempt that is no longer being sent (needs the customer, or failed) is purged.
fn purge_superseded(queue: &QueueHandle, old: &str) {
    match queue.show(old) {
        Ok(d) if matches!(d.summary.state, State::NeedsUser | State::Failed) => match queue.purge(old) {
            Ok(_) => log::info!("application {old} was replaced by the customer's new attempt and purged"),
            Err(e) => log::warn!("cannot purge the replaced application {old}: {e}"),
        },
        Ok(d) => log::info!("application {old} is {} and stays in the queue", d.summary.state.as_str()),
        Err(e) => log::warn!("cannot look up the replaced application {old}: {e}"),
    }
}

/// The cameras the operator can choose from (automatic, the devices found, the configured camera when it is none of
/// those, the demo pictures) and the id of the one `current` selects. Pure.
pub(crate) fn camera_options(
    configured: &CameraConfig,
    current: &CameraConfig,
    devices: &[DeviceInfo],
) -> (Vec<CameraOption>, String) {
    let mut options = vec![CameraOption { id: "auto".into(), kind: CameraKind::Auto, name: String::new() }];
    for d in devices {
        options.push(CameraOption {
            id: format!("device:{}", d.index),
            kind: CameraKind::Device,
            name: format!("{} ({})", d.name, d.path.display()),
        });
    }
    let own = option_id(configured);
    if !options.iter().any(|o| o.id == own) && own != "demo" {
        let (kind, name) = match &configured.source {
            SourceSetting::Replay(p) => (CameraKind::Replay, p.display().to_string()),
            _ => (CameraKind::Configured, configured.device.trim().to_string()),
        };
        options.push(CameraOption { id: own, kind, name });
    }
    options.push(CameraOption { id: "demo".into(), kind: CameraKind::Demo, name: String::new() });
    (options, option_id(current))
}

/// The option id of a camera setting.
fn option_id(c: &CameraConfig) -> String {
    match &c.source {
        SourceSetting::Auto => "auto".to_string(),
        SourceSetting::Demo => "demo".to_string(),
        SourceSetting::Device => format!("device:{}", c.device.trim()),
        SourceSetting::Replay(p) => format!("replay:{}", p.display()),
    }
}

/// The camera setting an option id stands for, keeping the rest of the configured `base` (size, deadlines).
/// `None` for an id [`camera_options`] would not offer. Pure.
pub(crate) fn config_for(id: &str, base: &CameraConfig) -> Option<CameraConfig> {
    let with =
        |source: SourceSetting, device: &str| CameraConfig { source, device: device.to_string(), ..base.clone() };
    match id {
        "auto" => Some(with(SourceSetting::Auto, "")),
        "demo" => Some(with(SourceSetting::Demo, "")),
        _ => {
            if let Some(d) = id.strip_prefix("device:") {
                return Some(with(SourceSetting::Device, d));
            }
            // A replay only as configured: the console never opens an arbitrary path.
            match (&base.source, id.strip_prefix("replay:")) {
                (SourceSetting::Replay(p), Some(path)) if p.as_path() == std::path::Path::new(path) => {
                    Some(base.clone())
                }
                _ => None,
            }
        }
    }
}

/// A copy of `img` at most `max_w` wide for display, mirrored for the face (people expect a mirror). Halving by
/// 2x2 averages comes first while the frame is at least twice too wide (720p to the 640 px preview is exactly one
/// halving, several times cheaper than a general filter); a general area filter does what is left.
pub fn preview_pixels(img: &RgbImage, max_w: u32, mirror: bool) -> SharedPixelBuffer<Rgb8Pixel> {
    let max_w = max_w.max(1);
    let mut scaled: Option<RgbImage> = None;
    loop {
        let cur = scaled.as_ref().unwrap_or(img);
        if cur.width() < 2 * max_w || cur.height() < 2 {
            break;
        }
        scaled = Some(halve(cur));
    }
    let cur = scaled.as_ref().unwrap_or(img);
    let (w, h) = cur.dimensions();
    let fitted = if w > max_w {
        let nh = ((h as u64 * max_w as u64) / w.max(1) as u64).max(1) as u32;
        Some(image::imageops::thumbnail(cur, max_w, nh))
    } else {
        None
    };
    let shown = fitted.as_ref().unwrap_or(cur);
    let mut out = SharedPixelBuffer::<Rgb8Pixel>::new(shown.width(), shown.height());
    let row = shown.width() as usize * 3;
    for (src, dst) in shown.as_raw().chunks_exact(row).zip(out.make_mut_bytes().chunks_exact_mut(row)) {
        if mirror {
            for (s, d) in src.chunks_exact(3).rev().zip(dst.chunks_exact_mut(3)) {
                d.copy_from_slice(s);
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
    out
}

/// Half the size, each pixel the rounded mean of a 2x2 block (an odd last row or column is dropped).
fn halve(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() / 2, img.height() / 2);
    let mut out = RgbImage::new(w, h);
    let stride = img.width() as usize * 3;
    let src = img.as_raw();
    let out_row = w as usize * 3;
    for (y, dst) in out.chunks_exact_mut(out_row).enumerate() {
        let top = &src[2 * y * stride..][..stride];
        let bottom = &src[(2 * y + 1) * stride..][..stride];
        for (x, px) in dst.chunks_exact_mut(3).enumerate() {
            let i = 6 * x;
            for c in 0..3 {
                let sum = u16::from(top[i + c])
                    + u16::from(top[i + 3 + c])
                    + u16::from(bottom[i + c])
                    + u16::from(bottom[i + 3 + c]);
                px[c] = ((sum + 2) / 4) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::SourceSetting;

    fn demo_enrollment(email: &str) -> NewEnrollment {
        let jpeg = |name: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name);
            UploadJpeg::from_operator_bytes(&std::fs::read(path).unwrap(), &EncodeConfig::default()).unwrap()
        };
        NewEnrollment {
            email: Email::parse(email).unwrap(),
            phone: Phone::parse("+447700900321").unwrap(),
            front: jpeg("id-front.jpg"),
            back: None,
            side: None,
            face: jpeg("face.jpg"),
        }
    }

    #[test]
    fn a_replaced_attempt_is_purged_only_once_it_stopped() {
        use crate::api::ErrorCode;
        use crate::queue::{LeaseAnswer, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let q = QueueHandle::open(dir.path(), &crate::queue::QueueConfig::default(), Duration::from_secs(60)).unwrap();
        let first = q.enqueue(demo_enrollment("first@example.com")).unwrap().reference;
        // Still waiting to be sent: it stays.
        purge_superseded(&q, &first);
        assert_eq!(q.list().unwrap().len(), 1);
        // The face did not match: the customer must act, then their new attempt replaces it.
        let LeaseAnswer::Step(lease) = q.lease().unwrap() else { panic!("nothing to send") };
        q.complete(lease.step_id, Outcome::NeedsUser { code: ErrorCode::FaceMismatch, http_status: Some(400) })
            .unwrap();
        let second = q.enqueue(demo_enrollment("first@example.com")).unwrap().reference;
        purge_superseded(&q, &first);
        let left: Vec<String> = q.list().unwrap().into_iter().map(|e| e.reference).collect();
        assert_eq!(left, vec![second]);
        // An unknown reference is only logged.
        purge_superseded(&q, "NOPE-000");
        q.shutdown();
    }

    #[test]
    fn camera_options_offer_every_source_and_only_those() {
        let dev = |i: u32| DeviceInfo { index: i, name: format!("Cam {i}"), path: format!("/dev/video{i}").into() };
        let replay = CameraConfig { source: SourceSetting::Replay("/srv/frames".into()), ..CameraConfig::default() };
        let demo = CameraConfig { source: SourceSetting::Demo, ..CameraConfig::default() };
        let ids = |o: &[CameraOption]| o.iter().map(|c| c.id.clone()).collect::<Vec<_>>();

        let (o, in_use) = camera_options(&replay, &replay, &[dev(0), dev(2)]);
        assert_eq!(ids(&o), ["auto", "device:0", "device:2", "replay:/srv/frames", "demo"]);
        assert_eq!(in_use, "replay:/srv/frames");
        let (o, in_use) = camera_options(&replay, &demo, &[]);
        assert_eq!(
            (ids(&o), in_use.as_str()),
            (vec!["auto".into(), "replay:/srv/frames".into(), "demo".into()], "demo")
        );
        let (o, in_use) = camera_options(&CameraConfig::default(), &CameraConfig::default(), &[]);
        assert_eq!((ids(&o), in_use.as_str()), (vec!["auto".to_string(), "demo".into()], "auto"));

        // Every offered id maps back to a setting; nothing else does (no arbitrary replay path).
        for id in ids(&camera_options(&replay, &replay, &[dev(0)]).0) {
            let c = config_for(&id, &replay).unwrap_or_else(|| panic!("{id}"));
            assert_eq!(option_id(&c), id);
            assert_eq!(c.width, replay.width);
        }
        assert_eq!(config_for("replay:/etc", &replay), None);
        assert_eq!(config_for("replay:/srv/frames", &demo), None);
        assert_eq!(config_for("bogus", &demo), None);
    }

    #[test]
    fn preview_pixels_are_scaled_and_mirrored() {
        let mut img = RgbImage::new(1280, 720);
        img.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        img.put_pixel(1, 0, image::Rgb([255, 0, 0]));
        img.put_pixel(0, 1, image::Rgb([255, 0, 0]));
        img.put_pixel(1, 1, image::Rgb([255, 0, 0]));
        let p = preview_pixels(&img, 640, true);
        assert_eq!((p.width(), p.height()), (640, 360));
        // The red 2x2 block at the top left is one red pixel, mirrored to the top right.
        assert_eq!(p.as_slice()[639], Rgb8Pixel { r: 255, g: 0, b: 0 });
        assert_eq!(p.as_slice()[0], Rgb8Pixel { r: 0, g: 0, b: 0 });
        let small = preview_pixels(&RgbImage::new(320, 180), 640, false);
        assert_eq!((small.width(), small.height()), (320, 180));
        // 1920 wide: one halving to 960, then the area filter to 640; 2560: two halvings.
        assert_eq!(preview_pixels(&RgbImage::new(1920, 1080), 640, false).height(), 360);
        assert_eq!(preview_pixels(&RgbImage::new(2560, 1440), 640, false).width(), 640);
        // Halving averages and rounds.
        let mut four = RgbImage::new(2, 2);
        for (i, v) in [10u8, 20, 30, 41].into_iter().enumerate() {
            four.put_pixel(i as u32 % 2, i as u32 / 2, image::Rgb([v, v, v]));
        }
        assert_eq!(halve(&four).get_pixel(0, 0).0, [25, 25, 25]);
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
