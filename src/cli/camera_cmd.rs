//! `cameras`: the devices found and the replay and demo sources; `cameras --check`: the configured camera opened
//! the way the kiosk opens it (through [`CameraWorker`]), its negotiated format, frame rate, first-frame time, the
//! preview and the face checks on its frames, and optionally a disconnect and reopen (`inspect` is in
//! `inspect_cmd.rs`). Main thread; the camera runs on the worker's thread.

use super::output::print_json;
use super::{CamerasArgs, Exit, JsonFlag};
use crate::camera::{
    self, CameraError, CameraEvent, CameraWorker, Frame, FrameTap, Planned, SourceSetting, StreamFormat,
};
use crate::capture::{Mode, QualityChecker, Verdict};
use crate::config::Loaded;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `cameras`: lists the cameras (with the formats each offers), the configured replay, the demo frames, and which
/// source `camera.source` selects. Exit 4 when the selection cannot work (no camera for `device`, a missing replay).
pub fn cameras(loaded: &Loaded, out: JsonFlag) -> Exit {
    let config = &loaded.config.camera;
    if let Err(e) = config.validate() {
        eprintln!("error: {e}");
        return Exit::Fatal;
    }
    let (devices, list_error) = match camera::device::list_devices() {
        Ok(d) => (d, None),
        Err(CameraError::Unsupported) => (Vec::new(), Some("this build has no camera support".to_string())),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let plan = camera::plan(config, &devices);
    let replay = match &config.source {
        SourceSetting::Replay(p) => Some(p.clone()),
        _ => None,
    };
    let replay_problem = replay.as_ref().filter(|p| !p.exists()).map(|p| format!("{} does not exist", p.display()));
    let (selected, ok) = match (&plan, &replay_problem) {
        (Planned::Device(list), _) => {
            let d = &list[0];
            (format!("device {} ({}, {})", d.index, d.path.display(), d.name), true)
        }
        (Planned::Replay(p), None) => (format!("replay:{}", p.display()), true),
        (Planned::Replay(_), Some(problem)) => (format!("none: {problem}"), false),
        (Planned::Demo, _) => ("demo".to_string(), true),
        (Planned::Unavailable(why), _) => (format!("none: {why}"), false),
    };
    let probe_timeout = config.open_timeout.min(std::time::Duration::from_secs(3));
    let rows: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            let (formats, error) = match camera::device::probe_formats(d.index, probe_timeout) {
                Ok(f) => (f, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            json!({"index": d.index, "name": d.name, "path": d.path, "formats": formats, "error": error})
        })
        .collect();
    if out.json {
        print_json(&json!({
            "devices": rows,
            "device_error": list_error,
            "replay": replay,
            "demo": true,
            "source": String::from(config.source.clone()),
            "selected": selected,
            "usable": ok,
        }));
    } else {
        if rows.is_empty() {
            println!("cameras: none found{}", list_error.map(|e| format!(" ({e})")).unwrap_or_default());
        }
        for r in &rows {
            println!(
                "camera {}: {} ({})",
                r["index"],
                r["name"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or("")
            );
            match r["error"].as_str() {
                Some(e) => println!("  formats: unknown ({e})"),
                None => {
                    let f: Vec<&str> =
                        r["formats"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                    println!("  formats: {}", if f.is_empty() { "none usable".into() } else { f.join(", ") });
                }
            }
        }
        match &replay {
            Some(p) => println!("replay: {}", p.display()),
            None => println!("replay: none configured (camera.source = \"replay:PATH\" or EKYC_CAMERA_SOURCE)"),
        }
        println!("demo: bundled frames available");
        println!("camera.source = {:?} selects: {selected}", String::from(config.source.clone()));
    }
    if ok { Exit::Done } else { Exit::Fatal }
}

/// Width of the preview the kiosk shows (the same scaling as `view::live`).
const PREVIEW_MAX_W: u32 = 640;
/// How often the waits below look at the worker's events.
const SLICE: Duration = Duration::from_millis(100);
/// A disconnect must be reported within `camera.frame_timeout` plus this: the worker notices a silent camera on its
/// next poll slice after the deadline.
const REPORT_SLACK: Duration = Duration::from_millis(500);
/// Deadline for the camera thread to stop at the end.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);
/// A preview whose mean brightness (0..255) is below this is reported as black.
const BLACK_BELOW: f64 = 4.0;

/// Frames decoded in one run of the stream, counted from the worker's frame numbers and the source's counters.
#[derive(Debug, Clone, Serialize)]
struct StreamStats {
    /// Frames the worker decoded in this run.
    frames_decoded: u64,
    /// Of those, frames this check took (the others were replaced by newer ones first: the check was busy).
    frames_taken: u64,
    /// Corrupt or truncated frames dropped by the decoder.
    frames_corrupt: u64,
    /// Frames the driver delivered that were skipped because decoding was behind.
    frames_skipped: u64,
    /// Time from the first to the last frame, seconds.
    seconds: f64,
    /// Decoded frames per second over that time.
    measured_fps: f64,
    /// Size of the last frame.
    width: u32,
    /// Height of the last frame.
    height: u32,
    /// The kiosk's face preview of the last frame (scaled and mirrored): its size and mean brightness.
    preview_width: u32,
    /// Preview height.
    preview_height: u32,
    /// Mean brightness of the preview, 0..255 (below 4: black).
    preview_brightness: f64,
}

/// The disconnect and the reopen seen with `--expect-disconnect`.
#[derive(Debug, Clone, Serialize, Default)]
struct DisconnectReport {
    /// The disconnect was reported this long after the last frame arrived, milliseconds.
    reported_after_ms: Option<f64>,
    /// The worker's reason.
    reason: Option<String>,
    /// `camera.frame_timeout`, milliseconds: the read deadline the report must meet (plus 500 ms).
    frame_timeout_ms: f64,
    /// The camera delivered again this long after the disconnect was reported, milliseconds.
    reopened_after_ms: Option<f64>,
    /// What was reopened.
    reopened: Option<String>,
    /// The frames decoded after the reopen.
    after_reopen: Option<StreamStats>,
}

/// Everything `cameras --check` reports.
#[derive(Debug, Serialize)]
struct CheckReport {
    /// True when the camera delivered frames within its deadlines (and, when asked, disconnected and came back).
    ok: bool,
    /// Which step failed: `config`, `no_camera`, `busy`, `open_timeout`, `open_failed`, `unsupported`, `demo`,
    /// `no_frames`, `stalled`, `disconnected`, `save`, `no_disconnect`, `late_disconnect`, `no_reopen`, `shutdown`.
    failure: Option<&'static str>,
    /// The failure in plain words.
    error: Option<String>,
    /// `camera.source`.
    source: String,
    /// `camera.device` (empty: the first camera that opens).
    device: String,
    /// The configured size and rate: `[width, height, fps]`.
    configured: [u32; 3],
    /// What the worker opened.
    opened: Option<String>,
    /// The negotiated format (a camera; none for replay files).
    format: Option<StreamFormat>,
    /// Time to open the camera, milliseconds.
    open_ms: Option<f64>,
    /// Time from the start to the first decoded frame, milliseconds.
    first_frame_ms: Option<f64>,
    /// The frames read.
    stream: Option<StreamStats>,
    /// The face checks on the last frame.
    verdict: Option<Verdict>,
    /// The verdict in a few words: `accepted`, `no face`, `2 faces`, `refused: move_closer`.
    verdict_summary: Option<String>,
    /// Where the last frame was saved.
    saved: Option<PathBuf>,
    /// With `--expect-disconnect`.
    disconnect: Option<DisconnectReport>,
    /// The worker's events (opened, disconnected, reopened, frames dropped), with the time since the start.
    events: Vec<String>,
}

impl CheckReport {
    fn fail(&mut self, failure: &'static str, error: String) -> Exit {
        self.ok = false;
        self.failure = Some(failure);
        self.error = Some(error);
        Exit::Fatal
    }
}

/// Which failure an open error is, and its message for support staff.
fn open_failure(e: &CameraError) -> (&'static str, String) {
    match e {
        CameraError::NoDevice(why) => ("no_camera", format!("no camera: {why}")),
        CameraError::Busy { device, reason } => (
            "busy",
            format!("camera {device} is busy: another program is using it (close it, or stop the kiosk): {reason}"),
        ),
        CameraError::OpenTimeout(d) => {
            ("open_timeout", format!("the camera did not open within camera.open_timeout ({d:?}): driver stuck?"))
        }
        CameraError::Config(m) => ("config", format!("camera config: {m}")),
        CameraError::Unsupported => ("unsupported", e.to_string()),
        other => ("open_failed", other.to_string()),
    }
}

/// The verdict in a few words.
fn summarize(v: &Verdict) -> String {
    match (v.accepted, v.faces) {
        (true, _) => "accepted".into(),
        (false, 0) => "no face".into(),
        (false, n) if n > 1 => format!("{n} faces"),
        (false, _) => format!("refused: {}", v.main_hint().map(|h| h.code()).unwrap_or("unknown")),
    }
}

/// Collects the worker's events into the report; returns the ones the caller waits for.
fn drain_events(worker: &CameraWorker, start: Instant, log: &mut Vec<String>) -> Vec<CameraEvent> {
    let mut seen = Vec::new();
    while let Some(e) = worker.try_event() {
        log.push(format!("{:.3}s {e:?}", start.elapsed().as_secs_f64()));
        seen.push(e);
    }
    seen
}

/// Mean brightness of the kiosk's face preview of `frame`, with the preview's size.
fn preview_of(frame: &Frame) -> (u32, u32, f64) {
    let p = crate::view::preview_pixels(&frame.image, PREVIEW_MAX_W, true);
    let bytes = p.as_bytes();
    let sum: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
    (p.width(), p.height(), sum as f64 / bytes.len().max(1) as f64)
}

/// Takes frames from the worker until `n` were decoded: the first within `first_wait`, each next within
/// `frame_timeout`. Every taken frame goes through the kiosk's preview scaling, as on screen. Fails with the
/// failure code and message when a wait passes or the camera disconnects.
fn read_frames(
    worker: &CameraWorker,
    tap: &FrameTap,
    after_seq: u64,
    n: u32,
    (first_wait, frame_timeout): (Duration, Duration),
    start: Instant,
    log: &mut Vec<String>,
) -> Result<(StreamStats, Arc<Frame>), (&'static str, String)> {
    let counts0 = tap.source_counts();
    let mut first: Option<Arc<Frame>> = None;
    let mut last_seq = after_seq;
    let mut taken = 0u64;
    let mut wait_end = Instant::now() + first_wait;
    loop {
        for e in drain_events(worker, start, log) {
            if let CameraEvent::Disconnected { reason } = e {
                return Err(("disconnected", format!("the camera disconnected after {taken} frames: {reason}")));
            }
        }
        let now = Instant::now();
        if now >= wait_end {
            return Err(match first {
                None => ("no_frames", format!("the camera opened but delivered no frame within {first_wait:?}")),
                Some(_) => ("stalled", format!("no frame for {frame_timeout:?} after {taken} frames")),
            });
        }
        let frame = match tap.wait_newer(last_seq, SLICE.min(wait_end - now)) {
            Ok(f) => f,
            Err(CameraError::Timeout(_)) => continue,
            Err(e) => return Err(("stalled", format!("the camera stopped after {taken} frames: {e}"))),
        };
        last_seq = frame.seq;
        taken += 1;
        wait_end = Instant::now() + frame_timeout;
        let preview = preview_of(&frame);
        let f0 = first.get_or_insert_with(|| frame.clone()).clone();
        let decoded = frame.seq - f0.seq + 1;
        if decoded >= u64::from(n) {
            let seconds = frame.captured_at.saturating_duration_since(f0.captured_at).as_secs_f64();
            let counts = tap.source_counts();
            let stats = StreamStats {
                frames_decoded: decoded,
                frames_taken: taken,
                frames_corrupt: counts.0.saturating_sub(counts0.0),
                frames_skipped: counts.1.saturating_sub(counts0.1),
                seconds,
                measured_fps: if seconds > 0.0 { (decoded - 1) as f64 / seconds } else { 0.0 },
                width: frame.image.width(),
                height: frame.image.height(),
                preview_width: preview.0,
                preview_height: preview.1,
                preview_brightness: preview.2,
            };
            return Ok((stats, frame));
        }
    }
}

/// `cameras --check`: exit 0 when the camera delivered the frames within its deadlines (and, with
/// `--expect-disconnect`, reported the disconnect in time and came back), 4 otherwise.
pub fn check(loaded: &Loaded, args: CamerasArgs) -> Exit {
    let config = &loaded.config.camera;
    let mut r = CheckReport {
        ok: true,
        failure: None,
        error: None,
        source: String::from(config.source.clone()),
        device: config.device.clone(),
        configured: [config.width, config.height, config.fps],
        opened: None,
        format: None,
        open_ms: None,
        first_frame_ms: None,
        stream: None,
        verdict: None,
        verdict_summary: None,
        saved: None,
        disconnect: None,
        events: Vec::new(),
    };
    let exit = run_check(loaded, &args, &mut r);
    if args.out.json {
        match serde_json::to_value(&r) {
            Ok(v) => print_json(&v),
            Err(e) => eprintln!("error: cannot render the report: {e}"),
        }
    } else {
        print!("{}", render_check(&r));
    }
    if let Some(e) = &r.error {
        eprintln!("error: {e}");
    }
    exit
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run_check(loaded: &Loaded, args: &CamerasArgs, r: &mut CheckReport) -> Exit {
    let config = &loaded.config.camera;
    if let Err(e) = config.validate() {
        return r.fail("config", e.to_string());
    }
    let start = Instant::now();
    let worker = match CameraWorker::spawn(config) {
        Ok(w) => w,
        Err(e) => {
            let (failure, message) = open_failure(&e);
            return r.fail(failure, message);
        }
    };
    r.open_ms = Some(ms(start.elapsed()));
    r.opened = Some(worker.describe().to_string());
    r.format = worker.stream_format();
    let exit = with_worker(loaded, args, r, &worker, start);
    drain_events(&worker, start, &mut r.events);
    match worker.shutdown(SHUTDOWN_DEADLINE) {
        Ok(()) => exit,
        Err(e) if r.ok => r.fail("shutdown", format!("the camera thread did not stop: {e}")),
        Err(e) => {
            log::warn!("camera shutdown: {e}");
            exit
        }
    }
}

fn with_worker(
    loaded: &Loaded,
    args: &CamerasArgs,
    r: &mut CheckReport,
    worker: &CameraWorker,
    start: Instant,
) -> Exit {
    let config = &loaded.config.camera;
    if worker.is_demo() {
        return r.fail("demo", "no camera found: the kiosk would show the bundled demo frames (DEMO)".into());
    }
    let tap = worker.tap();
    // Frames must arrive within the open deadline, counted from the start like the kiosk's own wait.
    let first_wait = config.open_timeout.saturating_sub(start.elapsed()).max(SLICE);
    let (stats, last) =
        match read_frames(worker, &tap, 0, args.frames, (first_wait, config.frame_timeout), start, &mut r.events) {
            Ok(x) => x,
            Err((failure, message)) => return r.fail(failure, message),
        };
    r.first_frame_ms = Some(ms(last.captured_at.saturating_duration_since(start)) - stats.seconds * 1000.0);
    r.stream = Some(stats);
    r.format = worker.stream_format();
    let verdict = match QualityChecker::new(&loaded.config.capture) {
        Ok(mut checker) => checker.check(Mode::Face, &last.image),
        Err(e) => return r.fail("config", format!("the face checks cannot start: {e}")),
    };
    r.verdict_summary = Some(summarize(&verdict));
    r.verdict = Some(verdict);
    if let Some(path) = &args.save {
        if let Err(e) = last.image.save_with_format(path, image::ImageFormat::Png) {
            return r.fail("save", format!("cannot save {}: {e}", path.display()));
        }
        r.saved = Some(path.clone());
    }
    if args.expect_disconnect {
        return disconnect_and_reopen(config, args, r, worker, &tap, last.seq, start);
    }
    Exit::Done
}

/// Keeps taking frames until the worker reports a disconnect, then waits for it to deliver again and decodes the
/// frames once more.
fn disconnect_and_reopen(
    config: &camera::CameraConfig,
    args: &CamerasArgs,
    r: &mut CheckReport,
    worker: &CameraWorker,
    tap: &FrameTap,
    mut last_seq: u64,
    start: Instant,
) -> Exit {
    let wait = Duration::from_secs(args.wait);
    let mut d = DisconnectReport { frame_timeout_ms: ms(config.frame_timeout), ..Default::default() };
    // The test script waits for this line before it disconnects the camera.
    eprintln!("cameras --check: {} frames decoded; waiting up to {}s for a disconnect", args.frames, args.wait);
    let mut last_arrival = Instant::now();
    let end = Instant::now() + wait;
    let mut reported: Option<(Instant, String)> = None;
    // A fast reopen can arrive in the same batch of events as the disconnect.
    let mut back: Option<String> = None;
    while reported.is_none() && Instant::now() < end {
        if let Ok(f) = tap.wait_newer(last_seq, SLICE) {
            last_seq = f.seq;
            last_arrival = Instant::now();
        }
        for e in drain_events(worker, start, &mut r.events) {
            match e {
                CameraEvent::Disconnected { reason } if reported.is_none() => {
                    reported = Some((Instant::now(), reason));
                }
                CameraEvent::Reopened { description } if reported.is_some() => back = Some(description),
                _ => {}
            }
        }
    }
    let Some((at, reason)) = reported else {
        r.disconnect = Some(d);
        return r.fail("no_disconnect", format!("no disconnect was reported within {wait:?}"));
    };
    let after = at.saturating_duration_since(last_arrival);
    d.reported_after_ms = Some(ms(after));
    d.reason = Some(reason);
    eprintln!("cameras --check: disconnect reported {:.0} ms after the last frame; waiting for the camera", ms(after));
    if after > config.frame_timeout + REPORT_SLACK {
        r.disconnect = Some(d);
        return r.fail(
            "late_disconnect",
            format!("the disconnect was reported {after:?} after the last frame, later than camera.frame_timeout"),
        );
    }
    // Back when the worker says so or when frames flow again, whichever it shows first.
    let end = Instant::now() + wait;
    while back.is_none() && Instant::now() < end {
        for e in drain_events(worker, start, &mut r.events) {
            if let CameraEvent::Reopened { description } = e {
                back = Some(description);
            }
        }
        if back.is_none() {
            std::thread::sleep(SLICE);
        }
    }
    let Some(description) = back else {
        r.disconnect = Some(d);
        return r.fail("no_reopen", format!("the camera did not come back within {wait:?} of the disconnect"));
    };
    d.reopened_after_ms = Some(ms(at.elapsed()));
    d.reopened = Some(description);
    let seq_now = tap.latest().map_or(last_seq, |f| f.seq);
    let timeouts = (config.open_timeout, config.frame_timeout);
    let result = read_frames(worker, tap, seq_now, args.frames, timeouts, start, &mut r.events);
    match result {
        Ok((stats, _)) => {
            d.after_reopen = Some(stats);
            r.disconnect = Some(d);
            r.format = worker.stream_format();
            Exit::Done
        }
        Err((failure, message)) => {
            r.disconnect = Some(d);
            r.fail(failure, format!("after the reopen: {message}"))
        }
    }
}

fn stream_line(s: &StreamStats) -> String {
    format!(
        "{} decoded ({}x{}) in {:.2} s = {:.1} fps; {} corrupt, {} skipped while decoding was behind, {} not taken \
         by this check",
        s.frames_decoded,
        s.width,
        s.height,
        s.seconds,
        s.measured_fps,
        s.frames_corrupt,
        s.frames_skipped,
        s.frames_decoded - s.frames_taken
    )
}

fn preview_line(s: &StreamStats) -> String {
    let black = if s.preview_brightness < BLACK_BELOW { "BLACK" } else { "not black" };
    format!("{}x{}, mean brightness {:.0} ({black})", s.preview_width, s.preview_height, s.preview_brightness)
}

/// The readable report.
fn render_check(r: &CheckReport) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<13} {v}\n"));
    let [w, h, fps] = r.configured;
    let device = if r.device.is_empty() { "the first that opens".to_string() } else { format!("{:?}", r.device) };
    line("configured", format!("{w}x{h} @ {fps} fps, source {}, device {device}", r.source));
    if let Some(o) = &r.opened {
        line("opened", format!("{o} in {:.0} ms", r.open_ms.unwrap_or_default()));
    }
    if let Some(f) = &r.format {
        line("negotiated", format!("{} {}x{} @ {} fps on {}", f.pixel_format, f.width, f.height, f.fps, f.device));
    }
    if let Some(t) = r.first_frame_ms {
        line("first frame", format!("{t:.0} ms after the start"));
    }
    if let Some(s) = &r.stream {
        line("frames", stream_line(s));
        line("preview", preview_line(s));
    }
    if let (Some(v), Some(sum)) = (&r.verdict, &r.verdict_summary) {
        line("checks", format!("{sum} ({} face(s), {:.0} ms)", v.faces, v.metrics.check_ms));
    }
    if let Some(p) = &r.saved {
        line("saved", p.display().to_string());
    }
    if let Some(d) = &r.disconnect {
        if let (Some(after), Some(why)) = (d.reported_after_ms, &d.reason) {
            line(
                "disconnect",
                format!("reported {after:.0} ms after the last frame (deadline {:.0} ms): {why}", d.frame_timeout_ms),
            );
        }
        if let (Some(after), Some(what)) = (d.reopened_after_ms, &d.reopened) {
            line("reopened", format!("{:.1} s after the disconnect: {what}", after / 1000.0));
        }
        if let Some(s) = &d.after_reopen {
            line("after reopen", stream_line(s));
        }
    }
    for e in &r.events {
        line("event", e.clone());
    }
    let head = if r.ok {
        "camera ok: frames arrived within the deadlines\n".to_string()
    } else {
        format!("camera NOT ok ({})\n", r.failure.unwrap_or("unknown"))
    };
    head + &out
}
