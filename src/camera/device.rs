//! Real cameras through nokhwa's V4L2 backend (feature `camera-nokhwa`): listing, choosing a device by index, path
//! or name, negotiating MJPEG, then YUYV, then NV12 (the formats we decode; any other is skipped with a log line),
//! opening within a deadline, and reopening with backoff after a disconnect.
//!
//! nokhwa's `Camera` is not `Send` and its reads block without a timeout (nokhwa keeps the `v4l` stream, whose poll
//! timeout could be set, private), so a [`DeviceSource`] owns a reader thread (`camera-v4l`) that creates the
//! camera, reads raw buffers and hands them over a bounded channel (newest wins); decoding happens in
//! [`DeviceSource::next_frame`] on the camera thread, which therefore always honours its timeout and can shut down
//! even while a read is stuck in the driver. What bounds a read on an unplugged camera: the driver wakes a blocked
//! read with an error when the device goes away (checked against vivid's `disconnect` control in the VM test), the
//! reader reports the disconnect and reopens; a camera that stays present but silent leaves the reader blocked,
//! the worker reports it as disconnected after `camera.frame_timeout`, and frames flow again when it resumes.

use super::{CameraConfig, CameraError, FrameSource};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A camera found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// V4L2 index (the N of `/dev/videoN`).
    pub index: u32,
    /// The driver's name for it.
    pub name: String,
    /// Its device node.
    pub path: PathBuf,
}

/// `camera.device`: which camera to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// Empty: every camera in order, the first that opens.
    Any,
    /// An index, `0`.
    Index(u32),
    /// A device node or a link to one, `/dev/video2`, `/dev/v4l/by-id/usb-...-video-index0`.
    Path(PathBuf),
    /// Part of the camera's name, case-insensitive, `Logitech`.
    Name(String),
}

impl DeviceSelector {
    /// Reads `camera.device`.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("auto") {
            DeviceSelector::Any
        } else if let Ok(i) = s.parse::<u32>() {
            DeviceSelector::Index(i)
        } else if s.starts_with('/') {
            DeviceSelector::Path(PathBuf::from(s))
        } else {
            DeviceSelector::Name(s.to_string())
        }
    }
}

/// The V4L2 index a device node stands for, following links (`/dev/v4l/by-id/...` -> `/dev/video2` -> 2).
pub fn index_of_path(path: &Path) -> Option<u32> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    real.file_name()?.to_str()?.strip_prefix("video")?.parse().ok()
}

/// The indices to try, in order, for a selector. A path or index is tried even when the listing misses it.
pub fn candidates(selector: &DeviceSelector, devices: &[DeviceInfo]) -> Vec<u32> {
    match selector {
        DeviceSelector::Any => devices.iter().map(|d| d.index).collect(),
        DeviceSelector::Index(i) => vec![*i],
        DeviceSelector::Path(p) => index_of_path(p).into_iter().collect(),
        DeviceSelector::Name(n) => {
            let n = n.to_lowercase();
            devices.iter().filter(|d| d.name.to_lowercase().contains(&n)).map(|d| d.index).collect()
        }
    }
}

/// Whether an error text from the driver means the device is in use by another program (EBUSY). nokhwa passes the
/// driver's errors on as text only, so the text is all there is to go by.
pub fn is_busy_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("resource busy") || r.contains("os error 16") || r.contains("ebusy")
}

/// Why a selector that names a node or an index cannot be opened at all, before anything is tried: the node does not
/// exist (unplugged, wrong path). `None` when there is something to try.
pub fn missing_node(selector: &DeviceSelector) -> Option<String> {
    let node = match selector {
        DeviceSelector::Path(p) => p.clone(),
        DeviceSelector::Index(i) => PathBuf::from(format!("/dev/video{i}")),
        DeviceSelector::Any | DeviceSelector::Name(_) => return None,
    };
    (!node.exists()).then(|| format!("{} does not exist (unplugged, or another path)", node.display()))
}

#[cfg(all(feature = "camera-nokhwa", target_os = "linux"))]
pub use imp::{DeviceSource, list_devices, open, probe_formats};

#[cfg(not(all(feature = "camera-nokhwa", target_os = "linux")))]
/// Lists cameras: this build has no camera support.
pub fn list_devices() -> Result<Vec<DeviceInfo>, CameraError> {
    Err(CameraError::Unsupported)
}

#[cfg(not(all(feature = "camera-nokhwa", target_os = "linux")))]
/// Opens a camera: this build has no camera support.
pub fn open(_config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    Err(CameraError::Unsupported)
}

#[cfg(not(all(feature = "camera-nokhwa", target_os = "linux")))]
/// The formats a camera offers: this build has no camera support.
pub fn probe_formats(_index: u32, _timeout: std::time::Duration) -> Result<Vec<String>, CameraError> {
    Err(CameraError::Unsupported)
}

#[cfg(all(feature = "camera-nokhwa", target_os = "linux"))]
mod imp {
    use super::*;
    use crate::camera::{CameraEvent, FormatSetting, Frame, FrameError, StreamFormat, mjpeg, nv12, yuyv};
    use nokhwa::Camera;
    use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
    use std::time::{Duration, Instant};

    /// Lists the V4L2 devices (empty when there are none; no device is opened).
    pub fn list_devices() -> Result<Vec<DeviceInfo>, CameraError> {
        let infos = nokhwa::query(ApiBackend::Video4Linux)
            .map_err(|e| CameraError::NoDevice(format!("cannot list cameras: {e}")))?;
        let mut out: Vec<DeviceInfo> = infos
            .into_iter()
            .filter_map(|info| {
                let index = info.index().as_index().ok()?;
                Some(DeviceInfo { index, name: info.human_name(), path: PathBuf::from(format!("/dev/video{index}")) })
            })
            .collect();
        out.sort_by_key(|d| d.index);
        Ok(out)
    }

    const MJPEG: &[FrameFormat] = &[FrameFormat::MJPEG];
    const YUYV: &[FrameFormat] = &[FrameFormat::YUYV];
    const NV12: &[FrameFormat] = &[FrameFormat::NV12];
    /// Every format [`decode`] handles. Others a camera offers (GRAY, RGB3, BGR3) are skipped in negotiation.
    const DECODED: &[FrameFormat] = &[FrameFormat::MJPEG, FrameFormat::YUYV, FrameFormat::NV12];

    /// The format requests tried in order: MJPEG closest to the wanted size and rate (least USB bandwidth), then
    /// YUYV, then NV12, then the highest resolution offered in any of them. (nokhwa 0.10's `Closest` only matches
    /// frame rates offered at exactly the wanted resolution, so a camera without that size falls through to the last
    /// request.)
    /// `camera.format` pins one format: its closest request, then its highest resolution.
    fn format_requests(config: &CameraConfig) -> Vec<RequestedFormat<'static>> {
        let want = |f| CameraFormat::new_from(config.width, config.height, f, config.fps);
        let only = |f: FrameFormat, list: &'static [FrameFormat]| {
            vec![
                RequestedFormat::with_formats(RequestedFormatType::Closest(want(f)), list),
                RequestedFormat::with_formats(RequestedFormatType::AbsoluteHighestResolution, list),
            ]
        };
        match config.format {
            FormatSetting::Auto => vec![
                RequestedFormat::with_formats(RequestedFormatType::Closest(want(FrameFormat::MJPEG)), MJPEG),
                RequestedFormat::with_formats(RequestedFormatType::Closest(want(FrameFormat::YUYV)), YUYV),
                RequestedFormat::with_formats(RequestedFormatType::Closest(want(FrameFormat::NV12)), NV12),
                RequestedFormat::with_formats(RequestedFormatType::AbsoluteHighestResolution, DECODED),
            ],
            FormatSetting::Mjpeg => only(FrameFormat::MJPEG, MJPEG),
            FormatSetting::Yuyv => only(FrameFormat::YUYV, YUYV),
            FormatSetting::Nv12 => only(FrameFormat::NV12, NV12),
        }
    }

    /// The error for a driver's refusal: busy (another program streams from it) or any other reason.
    fn open_error(device: String, reason: String) -> CameraError {
        if is_busy_reason(&reason) {
            CameraError::Busy { device, reason }
        } else {
            CameraError::Open { device, reason }
        }
    }

    fn describe_format(f: &CameraFormat) -> String {
        format!("{} {}x{}@{}", f.format(), f.width(), f.height(), f.frame_rate())
    }

    /// The formats camera `index` offers (opens it briefly on a helper thread, at most `timeout`).
    pub fn probe_formats(index: u32, timeout: Duration) -> Result<Vec<String>, CameraError> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("camera-probe".into())
            .spawn(move || {
                let r = Camera::new(
                    CameraIndex::Index(index),
                    RequestedFormat::with_formats(RequestedFormatType::None, DECODED),
                )
                .and_then(|mut cam| cam.compatible_camera_formats())
                .map(|list| list.iter().map(describe_format).collect::<Vec<_>>())
                .map_err(|e| open_error(index.to_string(), e.to_string()));
                let _ = tx.send(r);
            })
            .map_err(|e| CameraError::Thread(e.to_string()))?;
        rx.recv_timeout(timeout).map_err(|_| CameraError::OpenTimeout(timeout))?
    }

    /// An opened camera: the nokhwa handle, its description and the negotiated format.
    type Opened = (Camera, String, StreamFormat);

    /// Opens one candidate with the first format request it can fulfil, and starts its stream.
    fn open_index(index: u32, config: &CameraConfig) -> Result<Opened, CameraError> {
        let mut last = String::from("no format request tried");
        let mut logged = false;
        for request in format_requests(config) {
            match Camera::new(CameraIndex::Index(index), request) {
                Ok(mut cam) => {
                    match cam.compatible_camera_formats() {
                        Ok(list) if !logged => {
                            logged = true;
                            let offered: Vec<String> = list.iter().map(describe_format).collect();
                            log::info!("camera {index} offers: {}", offered.join(", "));
                            let skipped: Vec<String> =
                                list.iter().filter(|f| !DECODED.contains(&f.format())).map(describe_format).collect();
                            if !skipped.is_empty() {
                                log::info!("camera {index}: skipped, we do not decode them: {}", skipped.join(", "));
                            }
                        }
                        Ok(_) => {}
                        Err(e) => log::debug!("camera {index}: cannot list formats: {e}"),
                    }
                    if let Err(e) = cam.open_stream() {
                        last = e.to_string();
                        continue;
                    }
                    let fmt = cam.camera_format();
                    let desc = format!("{} (/dev/video{index}, {})", cam.info().human_name(), describe_format(&fmt));
                    log::info!("camera opened: {desc}");
                    let format = StreamFormat {
                        pixel_format: fmt.format().to_string(),
                        width: fmt.width(),
                        height: fmt.height(),
                        fps: fmt.frame_rate(),
                        device: format!("/dev/video{index}"),
                    };
                    return Ok((cam, desc, format));
                }
                Err(e) => {
                    log::debug!("camera {index}: {request}: {e}");
                    last = e.to_string();
                }
            }
        }
        Err(open_error(index.to_string(), last))
    }

    /// Resolves the selector (again on every reopen: a replugged camera may come back under another index) and
    /// opens the first candidate that works.
    fn open_selected(config: &CameraConfig) -> Result<Opened, CameraError> {
        let selector = DeviceSelector::parse(&config.device);
        // A node that is not there is told apart from one that refuses: the first is a cable or a path, the second
        // a driver or another program.
        if let Some(why) = missing_node(&selector) {
            return Err(CameraError::NoDevice(why));
        }
        let devices = list_devices()?;
        let list = candidates(&selector, &devices);
        if list.is_empty() {
            return Err(CameraError::NoDevice(match selector {
                DeviceSelector::Any => "no V4L2 device".into(),
                _ => format!("nothing matches camera.device = {:?}", config.device),
            }));
        }
        let mut last = None;
        for index in list {
            match open_index(index, config) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    log::warn!("{e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| CameraError::NoDevice("no candidate".into())))
    }

    enum Msg {
        Frame { data: Vec<u8>, format: FrameFormat, width: u32, height: u32, at: Instant },
        Disconnected(String),
        Reopened(String, StreamFormat),
    }

    /// Sleeps `d` in short slices; false when asked to stop.
    fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
        !stop.load(Ordering::Relaxed)
    }

    /// The reader thread: owns the nokhwa camera for its whole life.
    fn reader(
        config: CameraConfig,
        opened: SyncSender<Result<(String, StreamFormat), CameraError>>,
        tx: SyncSender<Msg>,
        stop: Arc<AtomicBool>,
        skipped: Arc<AtomicU64>,
    ) {
        let (mut cam, desc, format) = match open_selected(&config) {
            Ok(c) => c,
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        if opened.send(Ok((desc, format))).is_err() {
            // The opener gave up waiting (open timeout).
            return;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let read = cam.frame();
            match read {
                Ok(buf) => {
                    let res = buf.resolution();
                    let msg = Msg::Frame {
                        data: buf.buffer().to_vec(),
                        format: buf.source_frame_format(),
                        width: res.width(),
                        height: res.height(),
                        at: Instant::now(),
                    };
                    // Bounded: a full channel means the camera thread is behind (decoding), so this frame is
                    // skipped rather than queued.
                    match tx.try_send(msg) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
                Err(e) => {
                    log::warn!("camera read failed: {e}");
                    let _ = cam.stop_stream();
                    drop(cam);
                    if tx.send(Msg::Disconnected(e.to_string())).is_err() {
                        return;
                    }
                    let mut backoff = config.reopen_backoff;
                    cam = loop {
                        if !sleep_unless_stopped(backoff, &stop) {
                            return;
                        }
                        match open_selected(&config) {
                            Ok((c, d, f)) => {
                                if tx.send(Msg::Reopened(d, f)).is_err() {
                                    return;
                                }
                                break c;
                            }
                            Err(e) => {
                                log::debug!("camera reopen failed, next try in {backoff:?}: {e}");
                                backoff = (backoff * 2).min(config.reopen_backoff_max);
                            }
                        }
                    };
                }
            }
        }
    }

    /// A V4L2 camera; see the module header.
    pub struct DeviceSource {
        rx: Receiver<Msg>,
        stop: Arc<AtomicBool>,
        description: String,
        format: StreamFormat,
        seq: u64,
        dropped: u64,
        skipped: Arc<AtomicU64>,
        events: VecDeque<CameraEvent>,
    }

    impl DeviceSource {
        /// Opens the configured camera within `camera.open_timeout`.
        pub fn open(config: &CameraConfig) -> Result<Self, CameraError> {
            config.validate()?;
            let (opened_tx, opened_rx) = mpsc::sync_channel(1);
            // Two slots: one frame in flight while the next is read; status messages wait for room.
            let (tx, rx) = mpsc::sync_channel(2);
            let stop = Arc::new(AtomicBool::new(false));
            let thread_stop = stop.clone();
            let thread_config = config.clone();
            let skipped = Arc::new(AtomicU64::new(0));
            let thread_skipped = skipped.clone();
            std::thread::Builder::new()
                .name("camera-v4l".into())
                .spawn(move || reader(thread_config, opened_tx, tx, thread_stop, thread_skipped))
                .map_err(|e| CameraError::Thread(e.to_string()))?;
            let (description, format) = match opened_rx.recv_timeout(config.open_timeout) {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(CameraError::OpenTimeout(config.open_timeout));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(CameraError::Open { device: config.device.clone(), reason: "reader stopped".into() });
                }
            };
            Ok(DeviceSource { rx, stop, description, format, seq: 0, dropped: 0, skipped, events: VecDeque::new() })
        }
    }

    impl Drop for DeviceSource {
        fn drop(&mut self) {
            // The reader stops at its next frame or backoff slice; a read stuck in the driver ends when the
            // device goes away, and dropping the receiver makes its next send fail.
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn decode(data: &[u8], format: FrameFormat, width: u32, height: u32) -> Result<image::RgbImage, FrameError> {
        match format {
            FrameFormat::MJPEG => mjpeg::decode_mjpeg(data),
            FrameFormat::YUYV => yuyv::yuyv_to_rgb(width, height, data),
            FrameFormat::NV12 => nv12::nv12_to_rgb(width, height, data),
            other => Err(FrameError::Unsupported(format!("pixel format {other}"))),
        }
    }

    impl FrameSource for DeviceSource {
        fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(left) {
                    Ok(Msg::Frame { data, format, width, height, at }) => match decode(&data, format, width, height) {
                        Ok(image) => {
                            self.seq += 1;
                            return Ok(Frame { image, seq: self.seq, captured_at: at });
                        }
                        Err(e) => {
                            log::debug!("dropped a camera frame: {e}");
                            self.dropped += 1;
                        }
                    },
                    Ok(Msg::Disconnected(reason)) => self.events.push_back(CameraEvent::Disconnected { reason }),
                    Ok(Msg::Reopened(description, format)) => {
                        self.description = description.clone();
                        self.format = format;
                        self.events.push_back(CameraEvent::Reopened { description });
                    }
                    Err(RecvTimeoutError::Timeout) => return Err(CameraError::Timeout(timeout)),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(CameraError::Disconnected("camera reader stopped".into()));
                    }
                }
            }
        }

        fn describe(&self) -> String {
            self.description.clone()
        }

        fn dropped(&self) -> u64 {
            self.dropped
        }

        fn skipped(&self) -> u64 {
            self.skipped.load(Ordering::Relaxed)
        }

        fn stream_format(&self) -> Option<StreamFormat> {
            Some(self.format.clone())
        }

        fn poll_event(&mut self) -> Option<CameraEvent> {
            self.events.pop_front()
        }
    }

    /// Opens the configured camera as a boxed source.
    pub fn open(config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
        Ok(Box::new(DeviceSource::open(config)?))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn format_requests_prefer_mjpeg_then_yuyv_at_the_configured_size() {
            let c = CameraConfig { width: 640, height: 480, fps: 15, ..CameraConfig::default() };
            let r = format_requests(&c);
            let want = CameraFormat::new_from(640, 480, FrameFormat::MJPEG, 15);
            assert_eq!(r[0].requested_format_type(), RequestedFormatType::Closest(want));
            // The offered list of a typical UVC webcam: MJPEG is chosen at the wanted size.
            let offered = [
                CameraFormat::new_from(640, 480, FrameFormat::YUYV, 30),
                CameraFormat::new_from(640, 480, FrameFormat::MJPEG, 15),
                CameraFormat::new_from(1280, 720, FrameFormat::MJPEG, 30),
            ];
            assert_eq!(r[0].fulfill(&offered), Some(offered[1]));
            // A YUYV-only camera fails the first request and is served by the second.
            let yuyv_only = [CameraFormat::new_from(640, 480, FrameFormat::YUYV, 15)];
            assert_eq!(r[0].fulfill(&yuyv_only), None);
            assert_eq!(r[1].fulfill(&yuyv_only), Some(yuyv_only[0]));
            // A camera without the wanted size still opens at its highest resolution.
            let odd = [
                CameraFormat::new_from(800, 600, FrameFormat::MJPEG, 20),
                CameraFormat::new_from(320, 240, FrameFormat::MJPEG, 30),
            ];
            assert_eq!(r[0].fulfill(&odd), None);
            assert_eq!(r[3].fulfill(&odd), Some(odd[0]));
            // An NV12-only camera (common on laptops) is served by the third request, at the wanted size.
            let nv12_only = [
                CameraFormat::new_from(1280, 720, FrameFormat::NV12, 30),
                CameraFormat::new_from(640, 480, FrameFormat::NV12, 30),
            ];
            assert_eq!(r[1].fulfill(&nv12_only), None);
            assert_eq!(r[2].fulfill(&nv12_only), Some(nv12_only[1]));
            // A format we do not decode is never chosen: the YUYV request serves this camera; and the last
            // request, whose highest size is offered only in GRAY, matches nothing rather than GRAY.
            let gray = [
                CameraFormat::new_from(1920, 1080, FrameFormat::GRAY, 30),
                CameraFormat::new_from(640, 480, FrameFormat::YUYV, 30),
            ];
            assert_eq!(r[1].fulfill(&gray), Some(gray[1]));
            assert_eq!(r[3].fulfill(&gray), None);
            // camera.format = "nv12" asks for NV12 only, even where YUYV is offered at the wanted size.
            let pinned = format_requests(&CameraConfig { format: FormatSetting::Nv12, ..c });
            let both = [nv12_only[1], CameraFormat::new_from(640, 480, FrameFormat::YUYV, 15)];
            assert_eq!(pinned.len(), 2);
            assert_eq!(pinned[0].fulfill(&both), Some(nv12_only[1]));
            assert_eq!(pinned[1].fulfill(&yuyv_only), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(index: u32, name: &str) -> DeviceInfo {
        DeviceInfo { index, name: name.into(), path: PathBuf::from(format!("/dev/video{index}")) }
    }

    #[test]
    fn selector_parsing_and_candidates() {
        let devices = [dev(0, "Integrated Camera"), dev(1, "Integrated Camera"), dev(4, "Logitech BRIO")];
        let cases: Vec<(&str, DeviceSelector, Vec<u32>)> = vec![
            ("", DeviceSelector::Any, vec![0, 1, 4]),
            ("auto", DeviceSelector::Any, vec![0, 1, 4]),
            ("4", DeviceSelector::Index(4), vec![4]),
            ("7", DeviceSelector::Index(7), vec![7]),
            ("/dev/video4", DeviceSelector::Path("/dev/video4".into()), vec![4]),
            ("/dev/null", DeviceSelector::Path("/dev/null".into()), vec![]),
            ("logitech", DeviceSelector::Name("logitech".into()), vec![4]),
            ("Integrated", DeviceSelector::Name("Integrated".into()), vec![0, 1]),
            ("Razer", DeviceSelector::Name("Razer".into()), vec![]),
        ];
        for (text, sel, want) in cases {
            let parsed = DeviceSelector::parse(text);
            assert_eq!(parsed, sel, "{text}");
            assert_eq!(candidates(&parsed, &devices), want, "{text}");
        }
    }

    #[test]
    fn busy_and_missing_devices_are_told_apart() {
        assert!(is_busy_reason("Device or resource busy (os error 16)"));
        assert!(is_busy_reason("Error: SetPropertyError: EBUSY"));
        assert!(!is_busy_reason("No such file or directory (os error 2)"));
        let missing = missing_node(&DeviceSelector::Path("/dev/video-not-here".into()));
        assert!(missing.is_some_and(|m| m.contains("/dev/video-not-here does not exist")));
        assert!(missing_node(&DeviceSelector::Index(4096)).is_some_and(|m| m.contains("/dev/video4096")));
        assert_eq!(missing_node(&DeviceSelector::Any), None);
        assert_eq!(missing_node(&DeviceSelector::Name("Logitech".into())), None);
        assert_eq!(missing_node(&DeviceSelector::Path("/dev/null".into())), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_to_a_device_node_resolves_to_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("video12");
        std::fs::write(&node, b"").unwrap();
        let link = dir.path().join("usb-Acme_Cam-video-index0");
        std::os::unix::fs::symlink(&node, &link).unwrap();
        assert_eq!(index_of_path(&link), Some(12));
        assert_eq!(index_of_path(Path::new("/dev/video3")), Some(3));
        assert_eq!(index_of_path(Path::new("/dev/ttyS0")), None);
    }
}
