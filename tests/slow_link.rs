//! The binary on a slow link (a loopback proxy limiting bandwidth in front of the sandbox): `enroll --wait` returns
//! within a few seconds of the wait it was given, even while an upload is still going out, and the application it
//! stopped sending stays queued (never parked for the customer); a later drain on a healthy link sends it.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

#[path = "support/cli.rs"]
mod cli;

use cli::{demo, json};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use fault_proxy::{FaultProxy, Mode};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const KEY: &str = "slow-link-key";

/// Runs the binary against `api` (this test's key) or nothing configured.
fn run(data: &Path, api: Option<&str>, args: &[&str]) -> Output {
    cli::run(data, api.map(|url| (url, KEY)), &[], args)
}

#[test]
fn enroll_wait_is_honoured_on_a_slow_link_and_the_application_stays_queued() {
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let proxy = FaultProxy::start(sb.addr());
    // About 350 KB of base64 for the document at 20 KB/s: the upload is still going out when the wait ends.
    proxy.set(Mode::Bandwidth(20_000));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (f, b, face) = (demo("id-front.jpg"), demo("id-back.jpg"), demo("face.jpg"));
    let url = proxy.url();
    let start = Instant::now();
    let o = run(
        data,
        Some(&url),
        &[
            "enroll",
            "--front",
            f.to_str().unwrap(),
            "--back",
            b.to_str().unwrap(),
            "--face",
            face.to_str().unwrap(),
            "--email",
            "slow@example.com",
            "--phone",
            "+447946000123",
            "--wait",
            "3",
            "--json",
        ],
    );
    let took = start.elapsed();
    let j = json(&o);
    println!("enroll --wait 3 returned after {took:?}: {j}");
    assert!(took < Duration::from_secs(7), "enroll --wait 3 took {took:?}");
    assert_eq!(o.status.code(), Some(5), "saved, not sent yet: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(j["state"], "queued");
    let reference = j["reference"].as_str().unwrap().to_string();

    // The stopped upload released its step: pending, not waiting for the customer.
    let sh = json(&run(data, None, &["queue", "show", &reference, "--json"]));
    assert_eq!(sh["state"], "pending", "{sh}");
    assert_eq!(sh["steps"][0]["state"], "pending", "{sh}");
    assert!(sh["last_error"].is_null() || sh["last_error"] != "document_image_invalid", "{sh}");

    // On a healthy link the next drain sends it.
    proxy.set(Mode::Pass);
    let o = run(data, Some(&url), &["queue", "drain", "--timeout", "60", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));
    let sh = json(&run(data, None, &["queue", "show", &reference, "--json"]));
    assert_eq!(sh["state"], "done", "{sh}");
}
