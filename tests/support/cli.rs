//! The `ekyc-kiosk` binary run as an operator runs it, for the CLI tests: its own data directory, quick uploader
//! retries, and either an API (its URL with `key`) or none at all (a demo on the built-in sandbox).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A bundled demo input (`assets/demo/NAME`).
pub fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name)
}

/// Runs the binary with `args` on the data directory `data`, sending to `api` (URL, key) or, with none, nothing
/// configured; `extra` variables are set last.
pub fn run(data: &Path, api: Option<(&str, &str)>, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    c.args(args)
        .env_remove("EKYC_CONFIG")
        .env("EKYC_DATA_DIR", data)
        .env("EKYC_UPLOADER_RETRY_BASE", "50ms")
        .env("EKYC_UPLOADER_RETRY_CAP", "500ms")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    match api {
        Some((url, key)) => c.env("EKYC_API_BASE_URL", url).env("EKYC_API_KEY", key),
        None => c.env_remove("EKYC_API_BASE_URL").env_remove("EKYC_API_KEY"),
    };
    for (k, v) in extra {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The one JSON object a `--json` command printed.
pub fn json(o: &Output) -> Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}
