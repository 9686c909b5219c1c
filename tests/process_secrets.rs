//! The running binary keeps its secrets to itself: no core dumps (`RLIMIT_CORE` 0), and `EKYC_API_KEY` gone from
//! its environment (`/proc/<pid>/environ`, which children would inherit) once the configuration has read it.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "env-secret-key-5f2c9a";

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name)
}

fn command(data: &Path, api: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    c.env_remove("EKYC_CONFIG")
        .env("EKYC_DATA_DIR", data)
        .env("EKYC_API_BASE_URL", api)
        .env("EKYC_API_KEY", KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn the_api_key_leaves_the_environment_and_core_dumps_are_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // One application saved offline, so the drain below has something to send.
    let (f, face) = (demo("id-front.jpg"), demo("face.jpg"));
    let o = command(data, "http://127.0.0.1:9")
        .args(["enroll", "--front", f.to_str().unwrap(), "--face", face.to_str().unwrap()])
        .args(["--email", "env@example.com", "--phone", "+447946000999", "--wait", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));

    // An API that accepts and never answers keeps the drain running while its /proc entries are read.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut child = command(data, &url).args(["queue", "drain", "--timeout", "3"]).spawn().unwrap();
    let pid = child.id();
    let (_conn, _) = silent.accept().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the drain did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();

    assert!(!environ.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the API key is still in /proc/{pid}/environ");
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    assert!(!err.contains(KEY), "{err}");
}
