//! Real cameras through nokhwa's V4L2 backend (feature `camera-nokhwa`): listing, choosing a device by index, path
//! or name, negotiating MJPEG then YUYV, opening within a deadline, and reopening with backoff after a disconnect.
//!
//! nokhwa's `Camera` is not `Send` and its reads block without a timeout, so a [`DeviceSource`] owns a reader
//! thread (`camera-v4l`) that creates the camera, reads raw buffers and hands them over a bounded channel (newest
//! wins); decoding happens in [`DeviceSource::next_frame`] on the camera thread, which therefore always honours its
//! timeout and can shut down even while a read is stuck in the driver.

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
    use crate::camera::{CameraEvent, Frame, FrameError, mjpeg, yuyv};
    use nokhwa::Camera;
    use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
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
    const BOTH: &[FrameFormat] = &[FrameFormat::MJPEG, FrameFormat::YUYV];

    /// The format requests tried in order: MJPEG closest to the wanted size and rate, then YUYV, then the highest
    /// resolution offered in either. (nokhwa 0.10's `Closest` only matches frame rates offered at exactly the wanted
    /// resolution, so a camera without that size falls through to the last request.)
    fn format_requests(config: &CameraConfig) -> [RequestedFormat<'static>; 3] {
        let want = |f| CameraFormat::new_from(config.width, config.height, f, config.fps);
        [
            RequestedFormat::with_formats(RequestedFormatType::Closest(want(FrameFormat::MJPEG)), MJPEG),
            RequestedFormat::with_formats(RequestedFormatType::Closest(want(FrameFormat::YUYV)), YUYV),
            RequestedFormat::with_formats(RequestedFormatType::AbsoluteHighestResolution, BOTH),
        ]
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
                    RequestedFormat::with_formats(RequestedFormatType::None, BOTH),
                )
                .and_then(|mut cam| cam.compatible_camera_formats())
                .map(|list| list.iter().map(describe_format).collect::<Vec<_>>())
                .map_err(|e| CameraError::Open { device: index.to_string(), reason: e.to_string() });
                let _ = tx.send(r);
            })
            .map_err(|e| CameraError::Thread(e.to_string()))?;
        rx.recv_timeout(timeout).map_err(|_| CameraError::OpenTimeout(timeout))?
    }

    /// Opens one candidate with the first format request it can fulfil, and starts its stream.
    fn open_index(index: u32, config: &CameraConfig) -> Result<(Camera, String), CameraError> {
        let mut last = String::from("no format request tried");
        for request in format_requests(config) {
            match Camera::new(CameraIndex::Index(index), request) {
                Ok(mut cam) => {
                    match cam.compatible_camera_formats() {
                        Ok(list) => {
                            let offered: Vec<String> = list.iter().map(describe_format).collect();
                            log::info!("camera {index} offers: {}", offered.join(", "));
                        }
                        Err(e) => log::debug!("camera {index}: cannot list formats: {e}"),
                    }
                    if let Err(e) = cam.open_stream() {
                        last = e.to_string();
                        continue;
                    }
                    let fmt = cam.camera_format();
                    let desc = format!("{} (/dev/video{index}, {})", cam.info().human_name(), describe_format(&fmt));
                    log::info!("camera opened: {desc}");
                    return Ok((cam, desc));
                }
                Err(e) => {
                    log::debug!("camera {index}: {request}: {e}");
                    last = e.to_string();
                }
            }
        }
        Err(CameraError::Open { device: index.to_string(), reason: last })
    }

    /// Resolves the selector (again on every reopen: a replugged camera may come back under another index) and
    /// opens the first candidate that works.
    fn open_selected(config: &CameraConfig) -> Result<(Camera, String), CameraError> {
        let selector = DeviceSelector::parse(&config.device);
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
        Reopened(String),
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
        opened: SyncSender<Result<String, CameraError>>,
        tx: SyncSender<Msg>,
        stop: Arc<AtomicBool>,
    ) {
        let (mut cam, desc) = match open_selected(&config) {
            Ok(c) => c,
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        if opened.send(Ok(desc)).is_err() {
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
                        Ok(()) | Err(TrySendError::Full(_)) => {}
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
                            Ok((c, d)) => {
                                if tx.send(Msg::Reopened(d)).is_err() {
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
        seq: u64,
        dropped: u64,
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
            std::thread::Builder::new()
                .name("camera-v4l".into())
                .spawn(move || reader(thread_config, opened_tx, tx, thread_stop))
                .map_err(|e| CameraError::Thread(e.to_string()))?;
            let description = match opened_rx.recv_timeout(config.open_timeout) {
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
            Ok(DeviceSource { rx, stop, description, seq: 0, dropped: 0, events: VecDeque::new() })
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
                    Ok(Msg::Reopened(description)) => {
                        self.description = description.clone();
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
            assert_eq!(r[2].fulfill(&odd), Some(odd[0]));
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
