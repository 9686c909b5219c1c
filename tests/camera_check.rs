//! `cameras --check` through the `ekyc-kiosk` binary without a camera: a replay source goes through the same camera
//! worker, preview scaling and face checks as a device (the VM test in `.ci/vm/camera-test` covers a real V4L2
//! driver), and a device node that is not there fails at once with its own failure code and exit 4.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Run {
    exit: i32,
    json: Value,
    stderr: String,
    took: Duration,
}

fn check(env: &[(&str, &str)], args: &[&str]) -> Run {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    cmd.args(["cameras", "--check", "--json"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EKYC_DATA_DIR", data.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    Run {
        exit: out.status.code().unwrap_or(-1),
        json,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        took: start.elapsed(),
    }
}

#[test]
fn a_replay_goes_through_the_worker_the_preview_and_the_checks() {
    let frames = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera.png");
    let saved = tempfile::tempdir().unwrap();
    let png = saved.path().join("last.png");
    let source = format!("replay:{}", frames.display());
    let r = check(
        &[("EKYC_CAMERA_SOURCE", &source), ("EKYC_CAMERA_FPS", "20")],
        &["--frames", "10", "--save", png.to_str().unwrap()],
    );
    assert_eq!(r.exit, 0, "{}\n{}", r.json, r.stderr);
    assert_eq!(r.json["ok"], true);
    let stream = &r.json["stream"];
    assert!(stream["frames_decoded"].as_u64().unwrap() >= 10, "{stream}");
    assert_eq!(stream["frames_corrupt"], 0);
    let fps = stream["measured_fps"].as_f64().unwrap();
    assert!((fps - 20.0).abs() <= 4.0, "a replay paced at 20 fps measured {fps}");
    assert!(stream["preview_brightness"].as_f64().unwrap() > 20.0, "{stream}");
    assert!(stream["preview_width"].as_u64().unwrap() <= 640);
    // A replay is not a camera: no negotiated format.
    assert_eq!(r.json["format"], Value::Null);
    // The fixture has one face, too small and off centre: refused with a hint, not an error.
    assert!(r.json["verdict"]["faces"].as_u64().is_some(), "{}", r.json);
    assert!(r.json["verdict_summary"].as_str().unwrap().starts_with("refused"), "{}", r.json);
    let saved = image::open(&png).unwrap();
    assert_eq!((saved.width(), saved.height()), (512, 512));
}

#[test]
fn a_missing_device_node_fails_at_once_with_its_own_code() {
    let r = check(&[("EKYC_CAMERA_SOURCE", "device"), ("EKYC_CAMERA_DEVICE", "/dev/video-not-here")], &[]);
    assert_eq!(r.exit, 4, "{}", r.json);
    assert_eq!(r.json["ok"], false);
    assert_eq!(r.json["failure"], "no_camera", "{}", r.json);
    assert!(r.stderr.contains("/dev/video-not-here does not exist"), "{}", r.stderr);
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);
}

#[test]
fn the_demo_frames_are_not_a_camera() {
    let r = check(&[("EKYC_CAMERA_SOURCE", "demo")], &["--frames", "3"]);
    assert_eq!(r.exit, 4, "{}", r.json);
    assert_eq!(r.json["failure"], "demo", "{}", r.json);
}
