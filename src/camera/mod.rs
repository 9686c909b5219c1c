//! Camera sources. Owns the [`FrameSource`] trait, the [`Frame`] type, the `[camera]` configuration, frame decoding
//! (MJPEG, YUYV) and the three sources: a real camera through nokhwa/V4L2 ([`device`]), a replay of files
//! ([`replay`]) and the bundled demo frames ([`demo`]). Sources run on the camera thread started by
//! [`CameraWorker`], which creates them there (nokhwa's camera is not `Send`); consumers (the UI preview, the
//! capture checks) take the latest frame from the worker on their own threads.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;

mod config;
pub mod demo;
pub mod device;
pub mod mjpeg;
pub mod replay;
mod worker;
pub mod yuyv;

pub use config::{CameraConfig, SourceSetting};
pub use demo::{DemoScene, DemoSource, Scene};
pub use device::{DeviceInfo, DeviceSelector};
pub use replay::ReplaySource;
pub use worker::{CameraWorker, FrameTap};

/// Largest accepted frame side, in pixels; larger headers are refused before anything is allocated.
pub const MAX_SIDE: u32 = 8192;
/// Largest accepted frame area, in pixels.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Largest accepted encoded frame or replay file, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// One decoded camera frame, RGB 8-bit.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The pixels.
    pub image: image::RgbImage,
    /// Sequence number from the source, increasing. Frames taken from a [`CameraWorker`] carry the worker's own
    /// counter: a gap means frames that were replaced by newer ones before anyone took them.
    pub seq: u64,
    /// When the source produced it.
    pub captured_at: Instant,
}

/// Why a source gave no frame, or could not be opened.
#[derive(Debug, Error)]
pub enum CameraError {
    /// No frame arrived before the deadline.
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    /// No camera was found, or none matches the configured selection.
    #[error("no camera found: {0}")]
    NoDevice(String),
    /// The camera exists but could not be opened or started.
    #[error("cannot open camera {device}: {reason}")]
    Open {
        /// The device (index, path or name).
        device: String,
        /// What the driver said.
        reason: String,
    },
    /// The camera did not open before `camera.open_timeout`.
    #[error("camera did not open within {0:?}")]
    OpenTimeout(Duration),
    /// The camera stopped delivering (unplugged, driver error); it is reopened automatically.
    #[error("camera disconnected: {0}")]
    Disconnected(String),
    /// A replay source cannot be used.
    #[error("replay {path}: {reason}")]
    Replay {
        /// The replay path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A replay that does not loop has served its last frame.
    #[error("end of replay")]
    EndOfReplay,
    /// The `[camera]` configuration is not usable.
    #[error("camera config: {0}")]
    Config(String),
    /// This build has no support for real cameras (built without the `camera-nokhwa` feature).
    #[error("this build has no camera support (feature camera-nokhwa is off)")]
    Unsupported,
    /// The camera worker has stopped.
    #[error("camera worker stopped")]
    Stopped,
    /// The camera thread did not stop before its deadline (it is left to finish on its own).
    #[error("camera thread did not stop within {0:?}")]
    ShutdownTimeout(Duration),
    /// A thread could not be started.
    #[error("cannot start the camera thread: {0}")]
    Thread(String),
}

impl CameraError {
    /// True when waiting or retrying cannot help (bad configuration, nothing to open, no support in this build).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CameraError::Config(_)
                | CameraError::Unsupported
                | CameraError::Replay { .. }
                | CameraError::EndOfReplay
                | CameraError::Stopped
        )
    }
}

/// Why one frame was dropped. Never fatal for a source: the frame is counted and skipped.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer is not a JPEG (no start-of-image marker).
    #[error("not a JPEG frame")]
    NotJpeg,
    /// The buffer ends before the frame does.
    #[error("truncated frame")]
    Truncated,
    /// A JPEG marker segment is malformed.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The frame declares dimensions that are zero or beyond the accepted bounds.
    #[error("refused frame dimensions {width}x{height}")]
    Dimensions {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The buffer is larger than any frame we accept.
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    /// A raw frame's length does not match its dimensions.
    #[error("raw frame holds {actual} bytes, expected {expected}")]
    Length {
        /// Bytes expected from the dimensions.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// A valid but unsupported coding (arithmetic, lossless, CMYK, a pixel format we do not decode).
    #[error("unsupported frame: {0}")]
    Unsupported(String),
    /// The decoder refused the data.
    #[error("frame does not decode: {0}")]
    Decode(String),
}

/// Something that happened to a camera, for the UI and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraEvent {
    /// The source is open and delivering. `demo` is true for the bundled demo frames (show DEMO).
    Opened {
        /// What was opened (device name and format, replay path, `DEMO`).
        description: String,
        /// The bundled demo frames, not a camera.
        demo: bool,
    },
    /// The camera stopped delivering; the worker keeps trying to reopen it.
    Disconnected {
        /// Why, in plain words.
        reason: String,
    },
    /// The camera delivers again after a disconnect.
    Reopened {
        /// What was reopened.
        description: String,
    },
    /// Corrupt or truncated frames were dropped since the last such event.
    FramesDropped {
        /// How many.
        count: u64,
    },
}

/// A source of frames: a real camera, a replay of files, or the bundled demo frames.
///
/// A source is used by one thread (the camera thread). `next_frame` never panics on bad data: corrupt frames are
/// skipped and counted in [`FrameSource::dropped`].
pub trait FrameSource {
    /// The next frame, waiting at most `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError>;
    /// A human-readable description (device name, replay path, `DEMO`).
    fn describe(&self) -> String;
    /// True for the bundled demo frames: the product shows DEMO and must not pass them off as a capture.
    fn is_demo(&self) -> bool {
        false
    }
    /// Corrupt or truncated frames dropped so far.
    fn dropped(&self) -> u64 {
        0
    }
    /// The next pending event (disconnects and reopens of a device), if any.
    fn poll_event(&mut self) -> Option<CameraEvent> {
        None
    }
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        (**self).next_frame(timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn is_demo(&self) -> bool {
        (**self).is_demo()
    }
    fn dropped(&self) -> u64 {
        (**self).dropped()
    }
    fn poll_event(&mut self) -> Option<CameraEvent> {
        (**self).poll_event()
    }
}

/// Decodes an encoded still (JPEG through the webcam MJPEG path, or PNG), bounded like a camera frame.
pub fn decode_image_bytes(bytes: &[u8]) -> Result<image::RgbImage, FrameError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return mjpeg::decode_mjpeg(bytes);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return decode_png(bytes);
    }
    Err(FrameError::Unsupported("neither JPEG nor PNG".into()))
}

fn decode_png(bytes: &[u8]) -> Result<image::RgbImage, FrameError> {
    use image::{ImageFormat, ImageReader};
    use std::io::Cursor;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png)
        .into_dimensions()
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    check_dimensions(width, height)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    reader.limits(decode_limits());
    let img = reader.decode().map_err(|e| FrameError::Decode(e.to_string()))?;
    Ok(img.into_rgb8())
}

/// Refuses zero or absurd dimensions before any pixel buffer is allocated.
pub fn check_dimensions(width: u32, height: u32) -> Result<(), FrameError> {
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(FrameError::Dimensions { width, height });
    }
    Ok(())
}

/// Decoder limits matching [`check_dimensions`], as a second line of defence.
fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    // RGBA output of the largest accepted frame plus the decoder's working buffers.
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    limits
}

/// Builds the source the configuration asks for. Runs on the camera thread (a device source must be created on
/// the thread that uses it). `auto` falls back to the demo frames only when no camera is found at all and the
/// product runs as a demo (`camera.demo_fallback`); a production kiosk reports the camera as unavailable instead.
pub fn open_source(config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    open_source_in(config, DemoScene::default())
}

/// [`open_source`], with the demo frames (if they are used) showing what `scene` asks for.
pub fn open_source_in(config: &CameraConfig, scene: DemoScene) -> Result<Box<dyn FrameSource>, CameraError> {
    config.validate()?;
    let demo = |why: &str| -> Result<Box<dyn FrameSource>, CameraError> {
        log::warn!("{why}: using the bundled demo frames (DEMO)");
        Ok(Box::new(DemoSource::with_scene(config, scene.clone())?))
    };
    match &config.source {
        SourceSetting::Replay(path) => Ok(Box::new(ReplaySource::open(path, config.fps)?)),
        SourceSetting::Demo => Ok(Box::new(DemoSource::with_scene(config, scene)?)),
        SourceSetting::Device => device::open(config),
        SourceSetting::Auto => match device::list_devices() {
            Ok(list) if !list.is_empty() => device::open(config),
            Ok(_) if config.demo_fallback => demo("no camera found"),
            Ok(_) => Err(CameraError::NoDevice("no camera found (camera.source = auto)".into())),
            Err(CameraError::Unsupported) if config.demo_fallback => demo("built without camera support"),
            Err(e) => Err(e),
        },
    }
}

/// What `open_source` would pick, worked out without opening anything (for `cameras`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// A device; the candidates in the order they will be tried.
    Device(Vec<DeviceInfo>),
    /// A replay of this path.
    Replay(PathBuf),
    /// The bundled demo frames.
    Demo,
    /// Nothing usable: why.
    Unavailable(String),
}

/// Decides which source a configuration selects, given the devices found.
pub fn plan(config: &CameraConfig, devices: &[DeviceInfo]) -> Planned {
    let device = |required: bool| {
        let sel = DeviceSelector::parse(&config.device);
        let picked: Vec<DeviceInfo> = device::candidates(&sel, devices)
            .into_iter()
            .filter_map(|i| devices.iter().find(|d| d.index == i).cloned())
            .collect();
        match (picked.is_empty(), devices.is_empty(), required) {
            (false, _, _) => Planned::Device(picked),
            (true, true, false) if config.demo_fallback => Planned::Demo,
            (true, true, false) => {
                Planned::Unavailable("no camera found (and no demo fallback outside demo mode)".into())
            }
            (true, true, true) => Planned::Unavailable("no camera found".into()),
            (true, false, _) => Planned::Unavailable(format!("no camera matches camera.device = {:?}", config.device)),
        }
    };
    match &config.source {
        SourceSetting::Replay(p) => Planned::Replay(p.clone()),
        SourceSetting::Demo => Planned::Demo,
        SourceSetting::Device => device(true),
        SourceSetting::Auto => device(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(index: u32, name: &str) -> DeviceInfo {
        DeviceInfo { index, name: name.into(), path: PathBuf::from(format!("/dev/video{index}")) }
    }

    #[test]
    fn plan_follows_the_source_setting() {
        let cams = [dev(0, "Logitech C920"), dev(1, "Logitech C920"), dev(2, "Integrated Webcam")];
        let mut c = CameraConfig { demo_fallback: true, ..CameraConfig::default() };
        let cases: Vec<(SourceSetting, &str, &[DeviceInfo], Planned)> = vec![
            (SourceSetting::Auto, "", &[], Planned::Demo),
            (SourceSetting::Auto, "", &cams, Planned::Device(cams.to_vec())),
            (SourceSetting::Auto, "integrated", &cams, Planned::Device(vec![cams[2].clone()])),
            (SourceSetting::Device, "", &[], Planned::Unavailable("no camera found".into())),
            (SourceSetting::Device, "2", &cams, Planned::Device(vec![cams[2].clone()])),
            (SourceSetting::Demo, "", &cams, Planned::Demo),
            (SourceSetting::Replay("/x".into()), "", &cams, Planned::Replay("/x".into())),
        ];
        for (source, device, devices, want) in cases {
            c.source = source.clone();
            c.device = device.into();
            assert_eq!(plan(&c, devices), want, "{source:?} {device:?}");
        }
        c.source = SourceSetting::Auto;
        c.device = "Razer".into();
        assert!(matches!(plan(&c, &cams), Planned::Unavailable(m) if m.contains("Razer")));
        // Outside demo mode, `auto` with no camera is unavailable, never the demo frames.
        c.device = String::new();
        c.demo_fallback = false;
        assert!(matches!(plan(&c, &[]), Planned::Unavailable(m) if m.contains("no camera found")));
        assert_eq!(plan(&c, &cams), Planned::Device(cams.to_vec()));
    }

    #[test]
    fn absurd_dimensions_are_refused() {
        for (w, h, ok) in
            [(1280, 720, true), (0, 720, false), (8193, 10, false), (8000, 8000, false), (8192, 4000, true)]
        {
            assert_eq!(check_dimensions(w, h).is_ok(), ok, "{w}x{h}");
        }
    }

    #[test]
    fn unknown_bytes_are_refused_not_decoded() {
        assert!(matches!(decode_image_bytes(b"GIF89a...."), Err(FrameError::Unsupported(_))));
        assert!(decode_image_bytes(b"\x89PNG\r\n\x1a\n garbage").is_err());
    }
}
