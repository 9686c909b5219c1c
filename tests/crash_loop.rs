//! Crash loops: the real binary is killed with SIGKILL at random points while it saves applications (`enroll`)
//! and while it uploads them to the sandbox (`enroll --wait`, `queue drain`), then restarted. Checked after every
//! kill: the database passes `PRAGMA integrity_check`. Checked at the end: every application whose reference the
//! child printed (it prints only after COMMIT) is in the queue and done at the server; extra uploads at the server
//! are no more than the kills that landed while a send was in flight.
//!
//! `CRASH_KILLS` sets the number of kills (default 300).

use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::queue::{QueueConfig, QueueHandle, State};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxEndpoint, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "crash-test-key";

struct Rig {
    sb: Sandbox,
    data: tempfile::TempDir,
    demo: PathBuf,
}

impl Rig {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
        c.args(args)
            .env_remove("EKYC_CONFIG")
            .env_remove("EKYC_API_KEY_FILE")
            .env("EKYC_DATA_DIR", self.data.path())
            .env("EKYC_API_BASE_URL", self.sb.base_url().as_str())
            .env("EKYC_API_KEY", KEY)
            .env("EKYC_UPLOADER_RETRY_BASE", "50ms")
            .env("EKYC_UPLOADER_RETRY_CAP", "500ms")
            .env("EKYC_UPLOADER_RETRY_REFILL", "10ms")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        c
    }

    fn enroll(&self, n: u32, wait: u64) -> Child {
        let d = |f: &str| self.demo.join(f).to_string_lossy().into_owned();
        let (front, back, face) = (d("id-front.jpg"), d("id-back.jpg"), d("face.jpg"));
        let email = format!("crash{n}@example.com");
        let phone = format!("+4479{n:07}");
        let wait = wait.to_string();
        self.command(&[
            "enroll", "--front", &front, "--back", &back, "--face", &face, "--email", &email, "--phone", &phone,
            "--wait", &wait,
        ])
        .spawn()
        .expect("spawn enroll")
    }

    /// Opens the queue as a restarted program would (recovering leases) and checks the database.
    fn check(&self) -> Vec<(String, State)> {
        let q = QueueHandle::open(self.data.path(), &QueueConfig::default(), Duration::from_secs(1)).expect("reopen");
        let ok = q.integrity_check().expect("integrity_check");
        assert_eq!(ok, "ok", "integrity_check after a kill");
        let list = q.list().unwrap().into_iter().map(|e| (e.reference, e.state)).collect();
        q.shutdown();
        list
    }
}

/// Successful calls counted from the sandbox's call log (which keeps the last 1000, so it is drained as we go).
#[derive(Default)]
struct Tally {
    documents: usize,
    faces: usize,
    created: usize,
    /// Creations answered 409: contacts are unique per application, so each is a second creation of the same
    /// application, which the sandbox refused (counted, not hidden by the refusal).
    create_conflicts: usize,
}

impl Tally {
    fn add(&mut self, sb: &Sandbox) {
        for c in sb.calls() {
            match (c.endpoint, c.status) {
                (Some(SandboxEndpoint::Document), Some(200)) => self.documents += 1,
                (Some(SandboxEndpoint::Face), Some(200)) => self.faces += 1,
                (Some(SandboxEndpoint::CreateRequest), Some(201)) => self.created += 1,
                (Some(SandboxEndpoint::CreateRequest), Some(409)) => self.create_conflicts += 1,
                _ => {}
            }
        }
        sb.faults().clear_calls();
    }
}

/// Kills the child (if still running) and returns what it printed and whether the kill interrupted it.
fn kill(mut child: Child) -> (String, bool) {
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    (out, running)
}

fn saved_refs(out: &str) -> Vec<String> {
    // Exactly the line printed after COMMIT: "saved K7-4QXM-2D".
    out.lines()
        .filter_map(|l| l.strip_prefix("saved "))
        .filter(|r| r.len() == 10 && !r.contains(' '))
        .map(str::to_string)
        .collect()
}

#[test]
fn kill_9_during_save_and_upload_loses_nothing_acknowledged() {
    let target: u32 = std::env::var("CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let rig =
        Rig { sb, data: tempfile::tempdir().unwrap(), demo: Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo") };

    // One uninterrupted run measures how long saving and sending take here.
    let t = Instant::now();
    let child = rig.enroll(0, 30);
    let out = child.wait_with_output().unwrap();
    let full = t.elapsed();
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "an uninterrupted enroll is done: {first}");
    let mut acknowledged: BTreeMap<String, u32> = BTreeMap::new();
    for r in saved_refs(&first) {
        acknowledged.insert(r, 0);
    }
    // And how long saving alone takes (until the reference is printed and the process exits).
    let t = Instant::now();
    let out = rig.enroll(1_000_000, 0).wait_with_output().unwrap();
    let save = t.elapsed();
    assert_eq!(out.status.code(), Some(5), "enroll --wait 0 answers 'saved, not sent yet'");
    for r in saved_refs(&String::from_utf8_lossy(&out.stdout)) {
        acknowledged.insert(r, 0);
    }
    println!("one enroll: saved in {save:?}, saved and sent in {full:?}");

    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut kills = 0u32;
    let mut kills_while_sending = 0u32;
    let mut kills_while_saving = 0u32;
    let mut n = 1u32;
    let mut extra_uploads_allowed = 0u32;
    let started = Instant::now();
    let mut tally = Tally::default();
    tally.add(&rig.sb);
    while kills < target {
        // Alternate: saving (kill anywhere in a --wait 0 run), saving then sending, and draining a backlog.
        let phase = n % 3;
        let child = if phase == 2 {
            rig.command(&["queue", "drain", "--timeout", "20"]).spawn().unwrap()
        } else {
            rig.enroll(n, if phase == 0 { 0 } else { 30 })
        };
        n += 1;
        let delay = if phase == 0 { save.mul_f64(rng.f64() * 1.1) } else { full.mul_f64(rng.f64()) };
        std::thread::sleep(delay);
        let (out, interrupted) = kill(child);
        for r in saved_refs(&out) {
            acknowledged.insert(r, n);
        }
        if interrupted {
            kills += 1;
            if phase == 0 {
                kills_while_saving += 1;
            } else {
                kills_while_sending += 1;
            }
        }
        let list = rig.check();
        let present: HashMap<_, _> = list.into_iter().collect();
        for r in acknowledged.keys() {
            assert!(present.contains_key(r), "acknowledged {r} is missing after kill {kills}");
        }
        extra_uploads_allowed = kills_while_sending;
        tally.add(&rig.sb);
        assert!(started.elapsed() < Duration::from_secs(600), "the crash loop must fit CI");
    }

    // No more kills: one drain sends everything.
    let out = rig.command(&["queue", "drain", "--timeout", "120", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "final drain: {}", String::from_utf8_lossy(&out.stdout));
    let list: HashMap<_, _> = rig.check().into_iter().collect();
    let q = QueueHandle::open(rig.data.path(), &QueueConfig::default(), Duration::from_secs(1)).unwrap();
    let api = ApiClient::new(&ApiConfig::default(), &FaceMatchConfig::default(), rig.sb.base_url(), ApiKey::new(KEY))
        .unwrap();
    let mut at_server = 0;
    for r in acknowledged.keys() {
        assert_eq!(list.get(r), Some(&State::Done), "acknowledged {r} was not sent");
        let d = q.show(r).unwrap();
        let found = api
            .find_request(&Email::parse(&d.email).unwrap(), &Phone::parse(&format!("+{}", d.phone)).unwrap())
            .unwrap();
        assert!(found.is_some(), "{r} is done here but has no request at the server");
        at_server += 1;
    }
    q.shutdown();

    // Duplicates at the server only from kills inside the ambiguous window: successful document and face uploads
    // beyond one per request come from sends whose answer a kill cut off.
    tally.add(&rig.sb);
    let created = tally.created;
    let conflicts = tally.create_conflicts;
    let requests = list.values().filter(|s| **s == State::Done).count();
    let extra = (tally.documents + tally.faces).saturating_sub(2 * requests);
    println!(
        "{kills} kills ({kills_while_saving} while saving, {kills_while_sending} while sending) over {} runs in {:?}; {} acknowledged, {at_server} at the \
         server; {created} requests created, {conflicts} repeated creations refused; {extra} repeated uploads",
        n,
        started.elapsed(),
        acknowledged.len()
    );
    assert!(created <= requests, "at most one request per application ({created} created for {requests})");
    assert!(
        conflicts as u32 <= extra_uploads_allowed,
        "{conflicts} repeated creations but only {extra_uploads_allowed} kills could have cut an answer off"
    );
    assert!(
        extra as u32 <= extra_uploads_allowed,
        "{extra} repeated uploads but only {extra_uploads_allowed} kills could have cut an answer off"
    );
    assert!(kills >= target);
}
