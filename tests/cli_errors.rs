//! Every error code the API can produce, end to end: through the `ekyc-kiosk` binary against the sandbox on
//! 127.0.0.1:0 (exit code and the `--json` object), and through the library for the liveness step, which the CLI
//! does not drive. Real inputs where the sandbox's rules produce the refusal (an unrecognisable document, a face
//! that does not match, a contact already used, a wrong key, unknown request ids, a closed port), injected answers
//! for the rest (byte-exact vendor bodies).

use ekyc_kiosk::api::{ApiClient, ApiConfig, ErrorCode, FaceMatchConfig, ImageBody};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxEndpoint, SandboxOptions, wire};
use ekyc_kiosk::secret::ApiKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const KEY: &str = "cli-errors-key";

fn start(liveness: bool) -> Sandbox {
    Sandbox::start(SandboxOptions {
        config: SandboxConfig { liveness_enabled: liveness, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap()
}

fn asset(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A fresh, unique email and phone per call, so requests never collide unless a test wants them to.
fn contact() -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst) + 100 * std::process::id() % 100_000;
    (format!("applicant{n}@example.com"), format!("+44 7700 {n:06}"))
}

struct Run {
    exit: i32,
    json: Value,
    stderr: String,
}

fn cli(base_url: &str, key: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Run {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EKYC_API_BASE_URL", base_url)
        .env("EKYC_API_KEY", key)
        .env("EKYC_DATA_DIR", data.path())
        .env("EKYC_API_CONNECT_TIMEOUT", "2s")
        .env("EKYC_API_RESPONSE_TIMEOUT", "20s")
        .env("EKYC_API_UPLOAD_TIMEOUT", "30s")
        .env("EKYC_API_REQUEST_TIMEOUT", "10s");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    Run { exit: out.status.code().unwrap_or(-1), json, stderr: String::from_utf8_lossy(&out.stderr).to_string() }
}

fn enroll(sb: &Sandbox, key: &str, extra_env: &[(&str, &str)], front: &str, face: &str, c: &(String, String)) -> Run {
    enroll_at(sb.base_url().as_str(), key, extra_env, front, face, c)
}

fn enroll_at(url: &str, key: &str, extra_env: &[(&str, &str)], front: &str, face: &str, c: &(String, String)) -> Run {
    let (front, back, face) = (asset(front), asset("assets/demo/id-back.jpg"), asset(face));
    cli(
        url,
        key,
        extra_env,
        &[
            "enroll",
            "--front",
            front.to_str().unwrap(),
            "--back",
            back.to_str().unwrap(),
            "--face",
            face.to_str().unwrap(),
            "--email",
            &c.0,
            "--phone",
            &c.1,
            "--wait",
            "3",
            "--json",
        ],
    )
}

const FRONT: &str = "assets/demo/id-front.jpg";
const FACE: &str = "assets/demo/face.jpg";

/// What a refused application looks like: exit code, state, code, step, HTTP status, action.
fn expect_error(run: &Run, exit: i32, state: &str, code: ErrorCode, step: &str, status: Option<u16>) {
    let ctx = format!("{code}: stderr: {}\njson: {}", run.stderr, run.json);
    assert_eq!(run.exit, exit, "{ctx}");
    assert_eq!(run.json["state"], state, "{ctx}");
    let e = &run.json["error"];
    assert_eq!(e["code"], code.as_str(), "{ctx}");
    assert_eq!(e["step"], step, "{ctx}");
    assert_eq!(e["http_status"].as_u64().map(|s| s as u16), status, "{ctx}");
    assert_eq!(e["action"], code.prompt().action.as_str(), "{ctx}");
    assert_eq!(e["message"], code.prompt().message, "{ctx}");
}

#[test]
fn the_demo_application_is_done() {
    let sb = start(false);
    let run = enroll(&sb, KEY, &[], FRONT, FACE, &contact());
    assert_eq!(run.exit, 0, "{} {}", run.stderr, run.json);
    assert_eq!(run.json["state"], "done");
    assert!(run.json["error"].is_null());
    assert!(run.json["document_id"].as_str().is_some_and(|d| !d.is_empty()));
    let score = run.json["face_score"].as_f64().unwrap();
    assert!((0.6..=1.0).contains(&score), "{score}");
    assert!(!run.stderr.contains(KEY), "the key never reaches the output");
}

#[test]
fn refusals_from_real_inputs() {
    let sb = start(false);
    // A wrong key.
    let run = enroll(&sb, "not-the-key", &[], FRONT, FACE, &contact());
    expect_error(&run, 4, "failed", ErrorCode::InvalidApiKey, "document", Some(401));
    assert!(!run.stderr.contains("not-the-key") && !run.json.to_string().contains("not-the-key"));
    // A cat is not an ID document.
    let run = enroll(&sb, KEY, &[], "tests/fixtures/chelsea.png", FACE, &contact());
    expect_error(&run, 3, "needs_user", ErrorCode::DocumentNotRecognized, "document", Some(400));
    // A man in profile does not match the card's portrait.
    let run = enroll(&sb, KEY, &[], FRONT, "tests/fixtures/camera.png", &contact());
    expect_error(&run, 3, "needs_user", ErrorCode::FaceMismatch, "face", Some(400));
    assert!(run.json["document_id"].as_str().is_some(), "the document step had succeeded");
    // The same email and phone twice.
    let c = contact();
    assert_eq!(enroll(&sb, KEY, &[], FRONT, FACE, &c).exit, 0);
    let run = enroll(&sb, KEY, &[], FRONT, FACE, &c);
    expect_error(&run, 3, "needs_user", ErrorCode::ContactAlreadyUsed, "request", Some(409));
}

#[test]
fn injected_vendor_answers_map_to_their_codes() {
    use ErrorCode::*;
    use SandboxEndpoint::{Document, Face};
    // (endpoint, status, body, content type, exit code, state, code, step)
    type Row = (SandboxEndpoint, u16, &'static str, &'static str, i32, &'static str, ErrorCode, &'static str);
    let rows: &[Row] = &[
        (Document, 400, wire::DOCUMENT_INVALID, "application/json", 3, "needs_user", DocumentImageInvalid, "document"),
        (Document, 400, wire::BASE64_INVALID, "application/json", 3, "needs_user", DocumentBase64Invalid, "document"),
        (Document, 400, wire::DOCUMENT_CONFLICT, "application/json", 4, "failed", DocumentImageConflict, "document"),
        (Document, 413, wire::TOO_LARGE, "text/plain", 3, "needs_user", PayloadTooLarge, "document"),
        (Face, 400, wire::FACE_INVALID, "application/json", 3, "needs_user", FaceImageInvalid, "face"),
        (Face, 400, wire::BASE64_INVALID, "application/json", 3, "needs_user", FaceBase64Invalid, "face"),
        (Face, 400, wire::FACE_CONFLICT, "application/json", 4, "failed", FaceImageConflict, "face"),
        (Face, 400, wire::NO_DOCUMENT, "application/json", 3, "needs_user", DocumentSessionNotFound, "face"),
        (Face, 400, wire::FACE_MISMATCH, "application/json", 3, "needs_user", FaceMismatch, "face"),
        (Document, 418, "<html>teapot</html>", "text/html", 4, "failed", UnexpectedResponse, "document"),
    ];
    let sb = start(false);
    for &(endpoint, status, body, content_type, exit, state, code, step) in rows {
        sb.faults().clear();
        // Every attempt gets the injected answer (a retry of the same input must not slip past it).
        sb.faults().force(Some(endpoint), 1000, status, body, content_type).unwrap();
        let run = enroll(&sb, KEY, &[], FRONT, FACE, &contact());
        expect_error(&run, exit, state, code, step, Some(status));
    }
}

#[test]
fn network_trouble_is_reported_as_such() {
    let sb = start(false);
    // The service is down (503 on every attempt).
    sb.faults().unavailable(Some(SandboxEndpoint::Document), 1000, None).unwrap();
    let run = enroll(&sb, KEY, &[], FRONT, FACE, &contact());
    // Saved, retried with backoff, not sent within --wait: exit 5 with the last error.
    expect_error(&run, 5, "queued", ErrorCode::ServerError, "document", Some(503));
    assert!(run.json["reference"].is_string());
    sb.faults().clear();
    // Slower than the deadline.
    sb.faults().set_latency(Duration::from_secs(4)).unwrap();
    let run = enroll(&sb, KEY, &[("EKYC_API_RESPONSE_TIMEOUT", "1s")], FRONT, FACE, &contact());
    expect_error(&run, 5, "queued", ErrorCode::Timeout, "document", None);
    sb.faults().clear();
    // Nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let run = enroll_at(&format!("http://{closed}/"), KEY, &[], FRONT, FACE, &contact());
    expect_error(&run, 5, "queued", ErrorCode::NetworkUnreachable, "document", None);
}

#[test]
fn transient_failures_of_operator_commands_have_their_own_exit_code() {
    // Nothing listens: a retry later may work, so this is not exit 4 (configuration or fatal).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let run = cli(&format!("http://{closed}/"), KEY, &[], &["requests", "list", "--json"]);
    assert_eq!(run.exit, 6, "{}", run.stderr);
    assert_eq!(run.json["error"]["code"], "network_unreachable");
    // The service is down.
    let sb = start(false);
    sb.faults().unavailable(None, 1000, None).unwrap();
    let run = cli(sb.base_url().as_str(), KEY, &[], &["requests", "list", "--json"]);
    assert_eq!(run.exit, 6, "{}", run.stderr);
    assert_eq!(run.json["error"]["code"], "server_error");
}

#[test]
fn operator_commands_report_unknown_requests() {
    let sb = start(false);
    let url = sb.base_url().to_string();
    let run = cli(&url, KEY, &[], &["requests", "show", "no-such-id", "--json"]);
    assert_eq!(run.exit, 4, "{}", run.stderr);
    assert_eq!(run.json["error"]["code"], "request_not_found");
    let run = cli(&url, KEY, &[], &["requests", "accept", "no-such-id", "--json"]);
    assert_eq!(run.exit, 4, "{}", run.stderr);
    assert_eq!(run.json["error"]["code"], "request_not_accepted");
    assert_eq!(run.json["error"]["http_status"], 400);
    let run = cli(&url, KEY, &[], &["requests", "delete", "no-such-id"]);
    assert_eq!(run.exit, 2, "delete without --yes is refused: {}", run.stderr);
    assert!(run.stderr.contains("--yes"));
    let run = cli(&url, KEY, &[], &["requests", "delete", "no-such-id", "--yes", "--json"]);
    assert_eq!(run.json["error"]["code"], "request_not_found");
}

#[test]
fn operator_commands_list_accept_and_delete() {
    let sb = start(false);
    let url = sb.base_url().to_string();
    let c = contact();
    assert_eq!(enroll(&sb, KEY, &[], FRONT, FACE, &c).exit, 0);
    let run = cli(&url, KEY, &[], &["requests", "list", "--accepted", "false", "--json"]);
    assert_eq!(run.exit, 0, "{}", run.stderr);
    let reqs = run.json["requests"].as_array().unwrap();
    let mine = reqs.iter().find(|r| r["email"] == c.0.as_str()).expect("the new request is pending");
    let id = mine["id"].as_str().unwrap().to_string();
    let run = cli(&url, KEY, &[], &["requests", "show", &id, "--json"]);
    assert_eq!(run.json["request"]["id"], id.as_str());
    // Human output too.
    let out = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"))
        .args(["requests", "list"])
        .env("EKYC_API_BASE_URL", &url)
        .env("EKYC_API_KEY", KEY)
        .env("EKYC_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&c.0));
    let run = cli(&url, KEY, &[], &["requests", "delete", &id, "--yes", "--json"]);
    assert_eq!(run.exit, 0, "{}", run.stderr);
    let run = cli(&url, KEY, &[], &["requests", "show", &id, "--json"]);
    assert_eq!(run.json["error"]["code"], "request_not_found");
}

#[test]
fn liveness_errors_through_the_library() {
    let sb = start(true);
    let cfg = ApiConfig { liveness_enabled: true, ..ApiConfig::default() };
    let api = ApiClient::new(&cfg, &FaceMatchConfig::default(), sb.base_url(), ApiKey::new(KEY)).unwrap();
    let rows: &[(&str, ErrorCode)] = &[
        (wire::VIDEO_INVALID, ErrorCode::LivenessVideoInvalid),
        (wire::VIDEO_BASE64_INVALID, ErrorCode::LivenessBase64Invalid),
        (wire::VIDEO_CONFLICT, ErrorCode::LivenessVideoConflict),
        (wire::LIVENESS_FAILED, ErrorCode::LivenessFailed),
        (wire::NO_DOCUMENT, ErrorCode::DocumentSessionNotFound),
    ];
    let clip = b"RIFF\0\0\0\0AVI LIST";
    for &(body, code) in rows {
        sb.faults().clear();
        sb.faults().force(Some(SandboxEndpoint::Liveness), 1, 400, body, "application/json").unwrap();
        let e = api.check_liveness("doc-1", ImageBody::from_bytes(clip)).unwrap_err();
        assert_eq!(e.code(), code, "{body}");
        assert_eq!(e.http_status(), Some(400));
    }
    // A real refusal: a clip that is not a video at all.
    sb.faults().clear();
    let e = api.check_liveness("doc-1", ImageBody::from_bytes(b"not a video")).unwrap_err();
    assert!(
        matches!(e.code(), ErrorCode::LivenessBase64Invalid | ErrorCode::DocumentSessionNotFound),
        "{:?}",
        e.code()
    );
}

/// The binary with nothing but `env` configured (and its own data directory).
fn bare(data: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("EKYC_DATA_DIR", data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Run {
        exit: out.status.code().unwrap_or(-1),
        json: serde_json::from_str(stdout.trim()).unwrap_or(Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// What `ekyc-kiosk config` prints with only `env` configured.
fn config_text(data: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    cmd.arg("config").env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("EKYC_DATA_DIR", data);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Demo stand-ins only when nothing is configured or a demo is asked for; every production misconfiguration is
/// refused with its message, exit 4, and nothing is saved (issue #10).
#[test]
fn a_configured_kiosk_never_falls_back_to_the_sandbox_and_a_bare_one_is_a_demo() {
    let c = contact();
    let (front, face) = (asset("assets/demo/id-front.jpg"), asset("assets/demo/face.jpg"));
    let enroll: Vec<String> = ["enroll", "--front", front.to_str().unwrap(), "--face", face.to_str().unwrap()]
        .into_iter()
        .map(String::from)
        .chain(["--email".into(), c.0.clone(), "--phone".into(), c.1.clone(), "--json".into()])
        .collect();
    let enroll: Vec<&str> = enroll.iter().map(String::as_str).collect();

    // Nothing configured: a demo, sent to the built-in sandbox.
    let data = tempfile::tempdir().unwrap();
    let run = bare(data.path(), &[], &enroll);
    assert_eq!((run.exit, run.json["state"].as_str()), (0, Some("done")), "{}", run.stderr);
    assert!(config_text(data.path(), &[]).contains("# run mode: demo (nothing is configured"));

    // A key without api.base_url: before, this used the built-in sandbox and said "done".
    let data = tempfile::tempdir().unwrap();
    let run = bare(data.path(), &[("EKYC_API_KEY", "sk_live_abc")], &enroll);
    let said = format!("{} {}", run.stderr, run.json);
    assert_eq!(run.exit, 4, "{said}");
    assert!(said.contains("api.base_url") && said.contains("EKYC_API_KEY"), "{said}");
    assert!(!said.contains("sk_live_abc"));
    assert!(!data.path().join("queue.db").exists(), "nothing was saved");

    // A configuration file without an API: production, nothing saved, the message says how to run a demo.
    let file = data.path().join("kiosk.toml");
    std::fs::write(&file, "[camera]\nfps = 25\n").unwrap();
    for args in [&enroll[..], &["queue", "drain", "--timeout", "1"][..], &["requests", "list"][..]] {
        let run = bare(data.path(), &[("EKYC_CONFIG", file.to_str().unwrap())], args);
        // `--json` says it in the JSON object, the others on standard error.
        let said = format!("{} {}", run.stderr, run.json);
        assert_eq!(run.exit, 4, "{args:?}: {said}");
        assert!(said.contains("no API is configured") && said.contains("--demo"), "{said}");
        assert!(!said.contains("sandbox listening"), "{said}");
    }
    assert!(!data.path().join("sandbox-state.json").exists(), "no sandbox started");
    let shown = config_text(data.path(), &[("EKYC_CONFIG", file.to_str().unwrap())]);
    assert!(shown.contains("# run mode: production") && shown.contains("refuse to run"), "{shown}");

    // The same file with --demo: the demo is asked for, and works.
    let c = contact();
    let mut demo = enroll.clone();
    let (e, p) = (c.0.as_str(), c.1.as_str());
    demo[6] = e;
    demo[8] = p;
    demo.push("--demo");
    let run = bare(data.path(), &[("EKYC_CONFIG", file.to_str().unwrap())], &demo);
    assert_eq!((run.exit, run.json["state"].as_str()), (0, Some("done")), "{}", run.stderr);
}
