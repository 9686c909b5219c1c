//! `cameras`: the devices found and the replay and demo sources (`inspect` is in `inspect_cmd.rs`). Main thread.

use super::output::print_json;
use super::{Exit, JsonFlag};
use crate::camera::{self, CameraError, Planned, SourceSetting};
use crate::config::Loaded;
use serde_json::json;

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
