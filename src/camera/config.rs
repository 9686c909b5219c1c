//! The `[camera]` configuration section: which source, which device, the wanted format and every camera deadline.
//! Plain data, read on the main thread and cloned into the camera thread.

use super::CameraError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[camera]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Where frames come from: `auto` (a camera; in demo mode, else the demo frames), `device`, `demo`, or
    /// `replay:PATH`.
    pub source: SourceSetting,
    /// Which camera: empty (the first that opens), an index (`0`), a device path (`/dev/video2`,
    /// `/dev/v4l/by-id/...`) or part of its name (`Logitech`, case-insensitive).
    pub device: String,
    /// Wanted frame width in pixels (the closest format the camera offers is used).
    pub width: u32,
    /// Wanted frame height in pixels.
    pub height: u32,
    /// Wanted frames per second; also the pace of replay and demo sources.
    pub fps: u32,
    /// Deadline for opening the camera.
    #[serde(with = "humantime_serde")]
    pub open_timeout: Duration,
    /// A camera that delivers no frame for this long is reported as disconnected.
    #[serde(with = "humantime_serde")]
    pub frame_timeout: Duration,
    /// First wait before reopening a disconnected camera; doubles on each failure up to `reopen_backoff_max`.
    #[serde(with = "humantime_serde")]
    pub reopen_backoff: Duration,
    /// Longest wait between reopen attempts.
    #[serde(with = "humantime_serde")]
    pub reopen_backoff_max: Duration,
    /// Whether `auto` may fall back to the demo frames when no camera is found. Not a configuration key: set from
    /// the run mode when the configuration is loaded (true only in demo mode), so a production kiosk whose camera
    /// is unplugged says the camera is unavailable instead of showing sample pictures.
    #[serde(skip)]
    pub demo_fallback: bool,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            source: SourceSetting::Auto,
            device: String::new(),
            width: 1280,
            height: 720,
            fps: 30,
            open_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(3),
            reopen_backoff: Duration::from_millis(500),
            reopen_backoff_max: Duration::from_secs(10),
            demo_fallback: false,
        }
    }
}

impl CameraConfig {
    /// Checks the values that types alone cannot (ranges, non-zero deadlines).
    pub fn validate(&self) -> Result<(), CameraError> {
        let bad = |m: String| Err(CameraError::Config(m));
        if !(16..=super::MAX_SIDE).contains(&self.width) || !(16..=super::MAX_SIDE).contains(&self.height) {
            return bad(format!("camera.width and camera.height must be 16..={}", super::MAX_SIDE));
        }
        if !(1..=120).contains(&self.fps) {
            return bad("camera.fps must be 1..=120".into());
        }
        for (k, v) in [
            ("open_timeout", self.open_timeout),
            ("frame_timeout", self.frame_timeout),
            ("reopen_backoff", self.reopen_backoff),
            ("reopen_backoff_max", self.reopen_backoff_max),
        ] {
            if v.is_zero() {
                return bad(format!("camera.{k} must be more than zero"));
            }
        }
        if self.reopen_backoff_max < self.reopen_backoff {
            return bad("camera.reopen_backoff_max must be at least camera.reopen_backoff".into());
        }
        Ok(())
    }

    /// Time between two frames at `fps`.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }
}

/// `camera.source`, written `auto`, `device`, `demo` or `replay:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SourceSetting {
    /// A camera when one is found; else, in demo mode only, the bundled demo frames (marked DEMO), and outside it
    /// "camera unavailable".
    Auto,
    /// A camera; none found is an error.
    Device,
    /// The bundled demo frames.
    Demo,
    /// A folder of JPEG/PNG frames, a single image or a concatenated MJPEG file.
    Replay(PathBuf),
}

impl TryFrom<String> for SourceSetting {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SourceSetting::parse(&s)
    }
}

impl From<SourceSetting> for String {
    fn from(s: SourceSetting) -> String {
        match s {
            SourceSetting::Auto => "auto".into(),
            SourceSetting::Device => "device".into(),
            SourceSetting::Demo => "demo".into(),
            SourceSetting::Replay(p) => format!("replay:{}", p.display()),
        }
    }
}

impl SourceSetting {
    /// Parses `auto`, `device`, `demo` or `replay:PATH`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" | "" => Ok(SourceSetting::Auto),
            "device" => Ok(SourceSetting::Device),
            "demo" => Ok(SourceSetting::Demo),
            other => match other.strip_prefix("replay:") {
                Some(p) if !p.trim().is_empty() => Ok(SourceSetting::Replay(PathBuf::from(p.trim()))),
                Some(_) => Err("replay: needs a path, e.g. replay:/var/lib/ekyc-kiosk/frames".into()),
                None => Err(format!("unknown camera source {other:?}: use auto, device, demo or replay:PATH")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_setting_round_trips() {
        let cases = [
            ("auto", Ok(SourceSetting::Auto)),
            ("device", Ok(SourceSetting::Device)),
            ("demo", Ok(SourceSetting::Demo)),
            ("replay:/tmp/frames", Ok(SourceSetting::Replay("/tmp/frames".into()))),
            ("replay:", Err(())),
            ("webcam", Err(())),
        ];
        for (text, want) in cases {
            let got = SourceSetting::parse(text);
            assert_eq!(got.clone().map_err(|_| ()), want, "{text}");
            if let Ok(s) = got {
                assert_eq!(String::from(s), text);
            }
        }
    }

    #[test]
    fn env_selects_a_replay_and_bad_values_are_refused() {
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string()), ("EKYC_DATA_DIR".into(), "/tmp/x".into())];
        let l = crate::config::load_with_env(None, &env("EKYC_CAMERA_SOURCE", "replay:/srv/frames")).unwrap();
        assert_eq!(l.config.camera.source, SourceSetting::Replay("/srv/frames".into()));
        let l = crate::config::load_with_env(None, &env("EKYC_CAMERA_OPEN_TIMEOUT", "750ms")).unwrap();
        assert_eq!(l.config.camera.open_timeout, Duration::from_millis(750));
        let e = crate::config::load_with_env(None, &env("EKYC_CAMERA_SOURCE", "webcam")).unwrap_err();
        assert!(e.to_string().contains("camera.source"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = CameraConfig::default();
        c.validate().unwrap();
        c.fps = 0;
        assert!(c.validate().unwrap_err().to_string().contains("camera.fps"));
        c = CameraConfig { open_timeout: Duration::ZERO, ..CameraConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("camera.open_timeout"));
        c = CameraConfig { width: 100_000, ..CameraConfig::default() };
        assert!(c.validate().is_err());
    }
}
