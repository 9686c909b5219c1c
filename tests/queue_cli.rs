//! The `queue` and `enroll` commands end to end through the binary, against a sandbox in this process: saving
//! offline and draining later, the JSON shapes and exit codes, an operator's purge, no image bytes left in the
//! database files afterwards, and corrupted database files at startup.

#[path = "support/cli.rs"]
mod cli;

use cli::{demo, json};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const KEY: &str = "queue-cli-key";

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap()
}

/// Runs the binary against `api` (this test's key) or nothing configured.
fn run(data: &Path, api: Option<&str>, args: &[&str]) -> Output {
    cli::run(data, api.map(|url| (url, KEY)), &[("EKYC_API_CONNECT_TIMEOUT", "1s")], args)
}

fn enroll(data: &Path, api: Option<&str>, n: u32, wait: &str) -> Output {
    let (f, b, face) = (demo("id-front.jpg"), demo("id-back.jpg"), demo("face.jpg"));
    let email = format!("cli{n}@example.com");
    let phone = format!("+4479460{n:05}");
    run(
        data,
        api,
        &[
            "enroll",
            "--front",
            f.to_str().unwrap(),
            "--back",
            b.to_str().unwrap(),
            "--face",
            face.to_str().unwrap(),
            "--email",
            &email,
            "--phone",
            &phone,
            "--wait",
            wait,
            "--json",
        ],
    )
}

/// 32-byte windows at several places of each image as stored (re-encoded the way enroll does) and as a file.
fn windows() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for name in ["id-front.jpg", "id-back.jpg", "face.jpg"] {
        let file = std::fs::read(demo(name)).unwrap();
        let stored = UploadJpeg::from_operator_bytes(&file, &EncodeConfig::default()).unwrap().bytes().to_vec();
        for bytes in [file, stored] {
            for k in 1..8 {
                let o = bytes.len() * k / 8;
                out.push(bytes[o..o + 32].to_vec());
            }
        }
    }
    out
}

fn scan(data: &Path, windows: &[Vec<u8>]) -> usize {
    let mut hits = 0;
    for suffix in ["", "-wal", "-shm"] {
        let Ok(bytes) = std::fs::read(data.join(format!("queue.db{suffix}"))) else { continue };
        for w in windows {
            if bytes.windows(w.len()).any(|x| x == w.as_slice()) {
                hits += 1;
            }
        }
    }
    hits
}

#[test]
fn offline_save_then_drain_purge_and_no_image_bytes_left() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // "Offline": the API is a closed port. The application is saved and reported as such.
    let dead = "http://127.0.0.1:9";
    let o = enroll(data, Some(dead), 1, "1");
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    let j = json(&o);
    assert_eq!(j["state"], "queued");
    let reference = j["reference"].as_str().unwrap().to_string();
    assert_eq!(j["error"]["code"], "network_unreachable", "{j}");
    assert_eq!(j["error"]["action"], "wait");
    let o = enroll(data, Some(dead), 2, "0");
    assert_eq!(o.status.code(), Some(5));
    let second = json(&o)["reference"].as_str().unwrap().to_string();

    let s = json(&run(data, None, &["queue", "status", "--json"]));
    assert_eq!(s["waiting"], 2);
    assert!(s["stored_bytes"].as_u64().unwrap() > 100_000);
    let l = json(&run(data, None, &["queue", "list", "--json"]));
    assert_eq!(l["enrollments"].as_array().unwrap().len(), 2);
    let sh = json(&run(data, None, &["queue", "show", &reference, "--json"]));
    assert_eq!(sh["steps"][0]["kind"], "document");
    assert!(sh["steps"][0]["attempts"].as_u64().unwrap() >= 1);
    let o = run(data, None, &["queue", "show", "nope", "--json"]);
    assert_eq!(o.status.code(), Some(2));

    // Back online: drain sends both.
    let sb = sandbox();
    let url = sb.base_url().to_string();
    let o = run(data, Some(&url), &["queue", "drain", "--timeout", "60", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(json(&o)["drained"], true);
    for r in [&reference, &second] {
        let sh = json(&run(data, None, &["queue", "show", r, "--json"]));
        assert_eq!(sh["state"], "done", "{sh}");
        assert_eq!(sh["image_bytes"], 0);
    }
    // An enroll online waits for the outcome: done, with the reference.
    let o = enroll(data, Some(&url), 3, "30");
    assert_eq!(o.status.code(), Some(0));
    let j = json(&o);
    assert_eq!(j["state"], "done");
    assert!(j["face_score"].as_f64().unwrap() > 0.5 && j["document_id"].is_string() && j["reference"].is_string());
    // The same contact again: the customer must act (exit 3) with the prompt's action.
    let o = enroll(data, Some(&url), 3, "30");
    assert_eq!(o.status.code(), Some(3));
    let j = json(&o);
    assert_eq!((j["state"].as_str(), j["error"]["code"].as_str()), (Some("needs_user"), Some("contact_already_used")));
    assert_eq!(j["error"]["step"], "request");
    assert_eq!(j["error"]["http_status"], 409);
    let needs = j["reference"].as_str().unwrap().to_string();

    // Purge needs --yes; then it is gone.
    assert_eq!(run(data, None, &["queue", "purge", &needs]).status.code(), Some(2));
    let o = run(data, None, &["queue", "purge", &needs, "--yes", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json(&o)["reason"], "operator");
    assert_eq!(run(data, None, &["queue", "show", &needs]).status.code(), Some(2));

    // Nothing biometric in the database, its WAL or its shared memory file.
    let w = windows();
    assert_eq!(scan(data, &w), 0, "image bytes found in the queue files");
    // The scan can find bytes: a file holding them is detected.
    std::fs::write(data.join("queue.db-shm.probe"), std::fs::read(demo("face.jpg")).unwrap()).unwrap();
    let probe = std::fs::read(data.join("queue.db-shm.probe")).unwrap();
    assert!(w.iter().any(|x| probe.windows(32).any(|y| y == x.as_slice())));
}

#[test]
fn corrupt_database_files_are_quarantined_and_the_cli_starts_within_5_seconds() {
    // (damage, quarantined?)
    let cases: &[(&str, bool)] = &[("truncate", true), ("flip-header", true), ("missing-wal", false)];
    for &(damage, quarantined) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        for n in 0..3 {
            assert_eq!(enroll(data, Some("http://127.0.0.1:9"), n, "0").status.code(), Some(5));
        }
        let db = data.join("queue.db");
        match damage {
            "truncate" => {
                let b = std::fs::read(&db).unwrap();
                std::fs::write(&db, &b[..b.len() / 2]).unwrap();
            }
            "flip-header" => {
                let mut b = std::fs::read(&db).unwrap();
                for x in &mut b[..16] {
                    *x ^= 0xFF;
                }
                std::fs::write(&db, &b).unwrap();
            }
            _ => {
                let _ = std::fs::remove_file(data.join("queue.db-wal"));
            }
        }
        let t = Instant::now();
        let o = run(data, None, &["queue", "status", "--json"]);
        assert!(t.elapsed() < Duration::from_secs(5), "{damage}: usable within 5 s");
        assert_eq!(o.status.code(), Some(0), "{damage}: {}", String::from_utf8_lossy(&o.stderr));
        let s = json(&o);
        let q = data.join("quarantine");
        assert_eq!(q.exists(), quarantined, "{damage}");
        // `queue check`: the fresh (or kept) database is sound; the quarantined copy is reported, not an error.
        let c = run(data, None, &["queue", "check", "--json"]);
        assert_eq!(c.status.code(), Some(0), "{damage}: {}", String::from_utf8_lossy(&c.stdout));
        let c = json(&c);
        assert_eq!((c["ok"].as_bool(), c["integrity"].as_str()), (Some(true), Some("ok")), "{damage}: {c}");
        assert_eq!(c["quarantined"].as_array().map(Vec::len), Some(usize::from(quarantined)), "{damage}: {c}");
        if quarantined {
            let moved: Vec<_> = std::fs::read_dir(&q).unwrap().collect();
            assert_eq!(moved.len(), 1, "{damage}");
            assert!(s["recent_events"].as_array().unwrap().iter().any(|e| e["kind"] == "quarantined"), "{s}");
            // A fresh queue works.
            assert_eq!(enroll(data, Some("http://127.0.0.1:9"), 9, "0").status.code(), Some(5), "{damage}");
        } else {
            // A missing WAL only loses what was not checkpointed; the file is sound and kept.
            assert!(s["waiting"].as_u64().is_some(), "{damage}");
        }
    }
}

#[test]
fn queue_check_fails_when_the_key_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert_eq!(enroll(data, Some("http://127.0.0.1:9"), 50, "0").status.code(), Some(5));
    let o = run(data, None, &["queue", "check", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    // What a power cut without the key file's fsyncs could do: the queue opens locked, and `queue check` says so.
    std::fs::remove_file(data.join("queue.key")).unwrap();
    let o = run(data, None, &["queue", "check", "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stdout));
    let c = json(&o);
    assert_eq!((c["ok"].as_bool(), c["locked"].as_str()), (Some(false), Some("key_missing")), "{c}");
    let o = run(data, None, &["queue", "check"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("NOT sound"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn status_and_list_work_while_another_process_holds_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let o = enroll(data, Some("http://127.0.0.1:9"), 40, "0");
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = json(&o)["reference"].as_str().unwrap().to_string();
    // This test process now holds the queue, as a running kiosk or drain would.
    let held =
        ekyc_kiosk::queue::QueueHandle::open(data, &ekyc_kiosk::queue::QueueConfig::default(), Duration::from_secs(1))
            .unwrap();
    let o = run(data, None, &["queue", "status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["waiting"], 1);
    let o = run(data, None, &["queue", "list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["enrollments"][0]["reference"], reference.as_str());
    // Commands that change the queue still wait for it to be free.
    let o = run(data, None, &["queue", "retry", &reference, "--json"]);
    assert_eq!(o.status.code(), Some(4));
    held.shutdown();
}
