//! The camera thread (`camera`): creates the configured source on its own thread, pulls frames from it and keeps
//! only the latest one in a slot that consumers (the UI preview, the capture checks) read from their own threads
//! through [`FrameTap`]s. Events (opened, disconnected, reopened, frames dropped) go out on a bounded channel.
//! [`CameraWorker::shutdown`] stops and joins the thread within a deadline.

use super::{CameraConfig, CameraError, CameraEvent, Frame, FrameSource};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Events waiting for the consumer at most; beyond this, new events are dropped (and logged).
const EVENT_CAPACITY: usize = 64;
/// How long the camera thread waits for a frame before it checks whether it should stop.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Shortest interval between two `FramesDropped` events.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct SlotState {
    latest: Option<Arc<Frame>>,
    /// The worker's frame counter: the `seq` of the latest frame.
    seq: u64,
    /// Frames replaced before anyone took them.
    replaced: u64,
    taken_seq: u64,
    /// Set when the thread ends: why no more frames will come.
    ended: Option<String>,
    end_of_replay: bool,
}

struct Slot {
    state: Mutex<SlotState>,
    cond: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // A panic while holding this lock cannot leave the state inconsistent (plain field writes), so a poisoned
        // lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle to the latest frame, for one consumer thread. Cheap to clone; `Send` and `Sync`.
#[derive(Clone)]
pub struct FrameTap {
    slot: Arc<Slot>,
    last_seq: u64,
    description: Arc<str>,
}

impl FrameTap {
    /// The newest frame, if any, without waiting (it may be one already seen).
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.slot.lock().latest.clone()
    }

    /// Waits at most `timeout` for a frame newer than `after_seq` and returns the newest one.
    pub fn wait_newer(&self, after_seq: u64, timeout: Duration) -> Result<Arc<Frame>, CameraError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.slot.lock();
        loop {
            if st.seq > after_seq
                && let Some(f) = st.latest.clone()
            {
                st.taken_seq = st.seq;
                return Ok(f);
            }
            if st.end_of_replay {
                return Err(CameraError::EndOfReplay);
            }
            if let Some(why) = &st.ended {
                return Err(CameraError::Disconnected(why.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CameraError::Timeout(timeout));
            }
            st = self.slot.cond.wait_timeout(st, deadline - now).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Frames replaced by a newer one before any consumer took them (normal when consumers run slower than the
    /// camera).
    pub fn replaced(&self) -> u64 {
        self.slot.lock().replaced
    }
}

impl FrameSource for FrameTap {
    /// The next frame newer than the last one this tap returned (a copy of the shared frame).
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        let f = self.wait_newer(self.last_seq, timeout)?;
        self.last_seq = f.seq;
        Ok(Arc::unwrap_or_clone(f))
    }

    fn describe(&self) -> String {
        self.description.to_string()
    }
}

type Factory = Box<dyn FnOnce() -> Result<Box<dyn FrameSource>, CameraError> + Send>;

/// The camera thread's handle; see the module header.
pub struct CameraWorker {
    slot: Arc<Slot>,
    events: Receiver<CameraEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    description: String,
    demo: bool,
    tap: FrameTap,
}

impl CameraWorker {
    /// Starts the camera thread with the source the configuration selects (see [`super::open_source`]) and waits
    /// until it is open, at most `camera.open_timeout` (plus a little for the thread to start).
    pub fn spawn(config: &CameraConfig) -> Result<CameraWorker, CameraError> {
        Self::spawn_in(config, super::DemoScene::default())
    }

    /// [`CameraWorker::spawn`], with the demo frames (when the configuration selects them) showing what `scene`
    /// asks for from one frame to the next.
    pub fn spawn_in(config: &CameraConfig, scene: super::DemoScene) -> Result<CameraWorker, CameraError> {
        config.validate()?;
        let cfg = config.clone();
        Self::spawn_with(config, Box::new(move || super::open_source_in(&cfg, scene)))
    }

    /// Starts the camera thread with a source built by `make` on that thread (tests, scripted replays:
    /// `CameraWorker::spawn_with(&cfg, Box::new(|| Ok(Box::new(ReplaySource::from_images(v, 30)?))))`).
    /// `config` supplies the deadlines.
    pub fn spawn_with(config: &CameraConfig, make: Factory) -> Result<CameraWorker, CameraError> {
        let slot = Arc::new(Slot { state: Mutex::new(SlotState::default()), cond: Condvar::new() });
        let (events_tx, events) = mpsc::sync_channel(EVENT_CAPACITY);
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let (t_slot, t_stop, frame_timeout) = (slot.clone(), stop.clone(), config.frame_timeout);
        let thread = std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || {
                let source = match make() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                let (description, demo) = (source.describe(), source.is_demo());
                if opened_tx.send(Ok((description.clone(), demo))).is_err() {
                    return;
                }
                send(&events_tx, CameraEvent::Opened { description, demo });
                run(source, &t_slot, &events_tx, &t_stop, frame_timeout);
            })
            .map_err(|e| CameraError::Thread(e.to_string()))?;
        // The device source honours open_timeout itself; the margin covers thread start and the demo's decode.
        let wait = config.open_timeout + Duration::from_millis(500);
        let (description, demo) = match opened_rx.recv_timeout(wait) {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stop.store(true, Ordering::Relaxed);
                return Err(CameraError::OpenTimeout(config.open_timeout));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                return Err(CameraError::Thread("the camera thread ended while opening its source".into()));
            }
        };
        log::info!("camera worker running: {description}");
        let tap = FrameTap { slot: slot.clone(), last_seq: 0, description: description.as_str().into() };
        Ok(CameraWorker { slot, events, stop, thread: Some(thread), description, demo, tap })
    }

    /// A handle for a consumer thread.
    pub fn tap(&self) -> FrameTap {
        self.tap.clone()
    }

    /// What is running (device and format, replay path, DEMO).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// True when the bundled demo frames are running: show DEMO.
    pub fn is_demo(&self) -> bool {
        self.demo
    }

    /// The next event, without waiting.
    pub fn try_event(&self) -> Option<CameraEvent> {
        self.events.try_recv().ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn wait_event(&self, timeout: Duration) -> Option<CameraEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Stops the camera thread and waits at most `deadline` for it to end. A thread still inside the driver then
    /// is left to finish on its own (it holds nothing the caller needs) and the call reports it.
    pub fn shutdown(mut self, deadline: Duration) -> Result<(), CameraError> {
        self.stop.store(true, Ordering::Relaxed);
        self.slot.cond.notify_all();
        let Some(thread) = self.thread.take() else { return Ok(()) };
        let end = Instant::now() + deadline;
        while !thread.is_finished() {
            if Instant::now() >= end {
                log::warn!("camera thread did not stop within {deadline:?}; leaving it");
                return Err(CameraError::ShutdownTimeout(deadline));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().map_err(|_| CameraError::Thread("the camera thread panicked".into()))
    }
}

impl FrameSource for CameraWorker {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        self.tap.next_frame(timeout)
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
    fn is_demo(&self) -> bool {
        self.demo
    }
}

impl Drop for CameraWorker {
    fn drop(&mut self) {
        // Without shutdown(): ask the thread to stop, do not wait.
        self.stop.store(true, Ordering::Relaxed);
        self.slot.cond.notify_all();
    }
}

fn send(tx: &SyncSender<CameraEvent>, e: CameraEvent) {
    match tx.try_send(e) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(e)) => log::warn!("camera event dropped, nobody reads them: {e:?}"),
    }
}

/// The camera thread's loop.
fn run(
    mut source: Box<dyn FrameSource>,
    slot: &Slot,
    events: &SyncSender<CameraEvent>,
    stop: &AtomicBool,
    frame_timeout: Duration,
) {
    let mut connected = true;
    let mut last_frame = Instant::now();
    let mut dropped_reported = 0u64;
    let mut last_drop_report: Option<Instant> = None;
    let end = |why: String, replay_end: bool| {
        let mut st = slot.lock();
        st.ended = Some(why);
        st.end_of_replay = replay_end;
        drop(st);
        slot.cond.notify_all();
    };
    while !stop.load(Ordering::Relaxed) {
        let result = source.next_frame(POLL_SLICE.min(frame_timeout));
        while let Some(e) = source.poll_event() {
            match &e {
                CameraEvent::Disconnected { .. } if !connected => continue,
                CameraEvent::Disconnected { .. } => connected = false,
                CameraEvent::Reopened { .. } if connected => continue,
                CameraEvent::Reopened { .. } => connected = true,
                _ => {}
            }
            send(events, e);
        }
        let dropped = source.dropped();
        if dropped > dropped_reported && last_drop_report.is_none_or(|t| t.elapsed() >= DROP_REPORT_INTERVAL) {
            send(events, CameraEvent::FramesDropped { count: dropped - dropped_reported });
            dropped_reported = dropped;
            last_drop_report = Some(Instant::now());
        }
        match result {
            Ok(mut frame) => {
                last_frame = Instant::now();
                if !connected {
                    connected = true;
                    send(events, CameraEvent::Reopened { description: source.describe() });
                }
                let mut st = slot.lock();
                st.seq += 1;
                frame.seq = st.seq;
                if st.latest.is_some() && st.taken_seq < st.seq - 1 {
                    st.replaced += 1;
                }
                st.latest = Some(Arc::new(frame));
                drop(st);
                slot.cond.notify_all();
            }
            Err(CameraError::Timeout(_)) => {
                if connected && last_frame.elapsed() >= frame_timeout {
                    connected = false;
                    send(events, CameraEvent::Disconnected { reason: format!("no frame for {frame_timeout:?}") });
                }
            }
            Err(CameraError::EndOfReplay) => {
                log::info!("camera: end of replay");
                end("end of replay".into(), true);
                return;
            }
            Err(e) if e.is_permanent() => {
                log::error!("camera stopped: {e}");
                send(events, CameraEvent::Disconnected { reason: e.to_string() });
                end(e.to_string(), false);
                return;
            }
            Err(e) => {
                if connected {
                    connected = false;
                    send(events, CameraEvent::Disconnected { reason: e.to_string() });
                }
                // A source that fails at once must not spin.
                std::thread::sleep(POLL_SLICE);
            }
        }
    }
    end("camera worker stopped".into(), false);
}
