//! The kiosk as a supervised appliance, with the real binary:
//! - under Xvfb, with a test `NOTIFY_SOCKET` and `WATCHDOG_USEC`: `READY=1` once the window is shown, `WATCHDOG=1`
//!   pings, `STATUS=` with the applications waiting; SIGTERM in the middle of a slow upload exits 0 within a
//!   deadline with its log line, and the step is pending again (then a drain on a healthy link sends it); the metrics
//!   textfile says what waits; and no log line of the whole run holds the applicant's email, phone or the API key;
//! - under the `cage` Wayland kiosk compositor with its headless backend (as a non-root user, as cage demands):
//!   the window is shown, and `READY=1` and `WATCHDOG=1` arrive; SIGTERM ends it cleanly.
//!
//! Needs `Xvfb`, `cage` and `xwayland` (installed by `.ci/setup`); without them it fails, it never skips.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

#[path = "support/cli.rs"]
mod cli;

use cli::{demo, json};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use fault_proxy::{FaultProxy, Mode};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "appliance-key-5b1e0c";
const EMAIL: &str = "appliance.applicant@example.com";
const PHONE: &str = "+447946000456";
/// The phone as stored and sent (digits only): neither form may appear in a log.
const PHONE_DIGITS: &str = "447946000456";
/// Deadline for the window to be shown (a debug build under Xvfb or cage).
const SHOWN: Duration = Duration::from_secs(60);
/// Deadline for the exit after SIGTERM (the kiosk's own is 10 s).
const STOPPED: Duration = Duration::from_secs(15);

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|f| f.is_file()))
        .unwrap_or_else(|| panic!("{tool} is not installed: run .ci/setup"))
}

/// The messages sent to a test `NOTIFY_SOCKET`, collected on a thread.
struct Notify {
    path: PathBuf,
    got: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        // cage's client runs as another user in the cage test.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with the test process; a read timeout only loops.
            loop {
                if let Ok(n) = sock.recv(&mut buf) {
                    g.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        });
        Notify { path, got }
    }

    fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `count` messages hold the line `line` (or start with it, for `STATUS=`).
    fn wait(&self, line: &str, count: usize, deadline: Duration, context: &dyn Fn() -> String) {
        let end = Instant::now() + deadline;
        loop {
            let n = self.messages().iter().filter(|m| m.lines().any(|l| l.starts_with(line))).count();
            if n >= count {
                return;
            }
            if Instant::now() >= end {
                panic!(
                    "{count} x {line:?} did not arrive within {deadline:?}; got {:?}\n{}",
                    self.messages(),
                    context()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An Xvfb server on a free display number, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new(which("Xvfb"))
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        let mut out = child.stdout.take().expect("Xvfb stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(&mut out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("Xvfb did not start within 20 s");
        let n: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb printed {line:?}, not a display number"));
        Xvfb { child, display: format!(":{n}") }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed on drop (a failed assertion must not leave a kiosk running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool, context: &dyn Fn() -> String) {
    let end = Instant::now() + deadline;
    while !ok() {
        if Instant::now() >= end {
            panic!("{what} did not happen within {deadline:?}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sigterm(pid: u32) {
    // SAFETY: kill has no memory effects; the pid is a child of this test (or its grandchild under cage).
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0, "kill -TERM {pid}");
}

fn wait_exit(child: &mut Child, deadline: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The applicant's contact details and the key must appear in no log line.
fn assert_no_secrets(what: &str, text: &str) {
    for secret in [EMAIL, PHONE, PHONE_DIGITS, KEY] {
        assert!(!text.contains(secret), "{what} holds {secret:?}:\n{text}");
    }
}

#[test]
fn sigterm_mid_upload_stops_the_kiosk_cleanly_and_systemd_hears_ready_watchdog_and_status() {
    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let proxy = FaultProxy::start(sb.addr());
    // About 350 KB of base64 for the document at 20 KB/s: the upload is still going out when SIGTERM comes.
    proxy.set(Mode::Bandwidth(20_000));
    let url = proxy.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prom = dir.path().join("ekyc.prom");
    let debug = [("RUST_LOG", "debug")];

    // One application saved (its upload cut off at once by --wait 0).
    let (f, b, face) = (demo("id-front.jpg"), demo("id-back.jpg"), demo("face.jpg"));
    let enroll = cli::run(
        &data,
        Some((&url, KEY)),
        &debug,
        &[
            "enroll",
            "--front",
            f.to_str().unwrap(),
            "--back",
            b.to_str().unwrap(),
            "--face",
            face.to_str().unwrap(),
            "--email",
            EMAIL,
            "--phone",
            PHONE,
            "--wait",
            "0",
            "--json",
        ],
    );
    assert_eq!(enroll.status.code(), Some(5), "saved, not sent: {}", String::from_utf8_lossy(&enroll.stderr));
    let reference = json(&enroll)["reference"].as_str().unwrap().to_string();
    let mut logs = String::from_utf8_lossy(&enroll.stderr).into_owned();

    // The kiosk, its uploader sending that application over the slow link.
    let x = Xvfb::start();
    let notify = Notify::bind(dir.path());
    let log = dir.path().join("kiosk.log");
    let started = Instant::now();
    let mut kiosk = Running(
        Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DISPLAY", &x.display)
            .env("EKYC_DATA_DIR", &data)
            .env("EKYC_API_BASE_URL", &url)
            .env("EKYC_API_KEY", KEY)
            .env("EKYC_METRICS_TEXTFILE", &prom)
            .env("EKYC_KIOSK_FULLSCREEN", "false")
            .env("RUST_LOG", "debug")
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let ctx = || format!("kiosk log:\n{}", read(&log));
    wait_for("the window shown", SHOWN, || read(&log).contains("kiosk: window shown"), &ctx);
    notify.wait("READY=1", 1, Duration::from_secs(5), &ctx);
    println!("READY=1 {:?} after start", started.elapsed());
    // Pings every 500 ms (half of WATCHDOG_USEC), from the UI thread.
    notify.wait("WATCHDOG=1", 3, Duration::from_secs(5), &ctx);
    notify.wait("STATUS=1 application waiting", 1, Duration::from_secs(10), &ctx);
    // The upload is on the wire (sent from the slow proxy's point of view) when the signal comes.
    wait_for("the upload started", Duration::from_secs(20), || read(&log).contains("sending "), &ctx);
    std::thread::sleep(Duration::from_secs(1));
    let metrics = read(&prom);
    assert!(metrics.lines().any(|l| l == "ekyc_applications_waiting 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "ekyc_camera_state{state=\"unavailable\"} 1"), "no camera here: {metrics}");

    let signalled = Instant::now();
    sigterm(kiosk.0.id());
    let status = wait_exit(&mut kiosk.0, STOPPED).unwrap_or_else(|| panic!("no exit within {STOPPED:?}\n{}", ctx()));
    let took = signalled.elapsed();
    println!("exit {status} {took:?} after SIGTERM");
    let text = read(&log);
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(text.contains("kiosk: stopped cleanly on SIGTERM"), "{text}");
    assert!(notify.messages().iter().any(|m| m.contains("STOPPING=1")), "{:?}", notify.messages());
    logs.push_str(&text);

    // The step the stop cut off is pending again, not parked for the customer.
    let sh = json(&cli::run(&data, None, &debug, &["queue", "show", &reference, "--json"]));
    assert_eq!(sh["state"], "pending", "{sh}");
    assert_eq!(sh["steps"][0]["state"], "pending", "{sh}");

    // A healthy link: the drain sends it and its file says so.
    proxy.set(Mode::Pass);
    let drain = cli::run(
        &data,
        Some((&url, KEY)),
        &[("RUST_LOG", "debug"), ("EKYC_METRICS_TEXTFILE", prom.to_str().unwrap())],
        &["queue", "drain", "--timeout", "60", "--json"],
    );
    assert_eq!(drain.status.code(), Some(0), "{}", String::from_utf8_lossy(&drain.stderr));
    logs.push_str(&String::from_utf8_lossy(&drain.stderr));
    let metrics = read(&prom);
    assert!(metrics.lines().any(|l| l == "ekyc_sent_total 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "ekyc_applications_waiting 0"), "{metrics}");

    // The whole run's logs, at debug level: no contact details, no key.
    assert!(logs.contains(&reference), "the logs name the application by its reference");
    assert_no_secrets("the logs", &logs);
    assert_no_secrets("the metrics file", &metrics);
}

/// The user cage runs as when the test runs as root (cage refuses root).
const CAGE_USER: &str = "ekyc-cage-test";

#[test]
fn under_cage_headless_the_window_is_shown_and_systemd_hears_ready_and_watchdog() {
    let cage = which("cage");
    which("Xwayland");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let runtime = dir.path().join("runtime");
    let data = dir.path().join("data");
    for d in [&runtime, &data] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let notify = Notify::bind(dir.path());
    let log = dir.path().join("cage.log");
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        if !Command::new("id").arg(CAGE_USER).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success() {
            let made = Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", CAGE_USER])
                .status()
                .unwrap();
            assert!(made.success(), "useradd {CAGE_USER}");
        }
        for d in [&runtime, &data] {
            assert!(Command::new("chown").arg(CAGE_USER).arg(d).status().unwrap().success());
        }
        let mut c = Command::new("runuser");
        c.args(["-u", CAGE_USER, "--"]).arg(&cage);
        c
    } else {
        Command::new(&cage)
    };
    // A demo (nothing configured): the demo camera and the built-in sandbox; the window as on a kiosk.
    cmd.args(["-s", "--"])
        .arg(env!("CARGO_BIN_EXE_ekyc-kiosk"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("WLR_BACKENDS", "headless")
        .env("WLR_RENDERER", "pixman")
        .env("WLR_LIBINPUT_NO_DEVICES", "1")
        .env("EKYC_DATA_DIR", &data)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "1000000")
        .stdin(Stdio::null());
    let out = std::fs::File::create(&log).unwrap();
    cmd.stdout(out.try_clone().unwrap()).stderr(out);
    let started = Instant::now();
    let mut cage_proc = Running(cmd.spawn().unwrap());
    let ctx = || format!("cage log:\n{}", read(&log));
    wait_for("the window shown under cage", SHOWN, || read(&log).contains("kiosk: window shown"), &ctx);
    println!("window shown under cage {:?} after start", started.elapsed());
    notify.wait("READY=1", 1, Duration::from_secs(5), &ctx);
    notify.wait("WATCHDOG=1", 2, Duration::from_secs(5), &ctx);

    // SIGTERM to the kiosk (systemd sends it to every process of the unit): it stops cleanly and cage follows.
    let kiosk = kiosk_pid(&notify.path).unwrap_or_else(|| panic!("the kiosk process is not found\n{}", ctx()));
    sigterm(kiosk);
    wait_for("the clean stop", STOPPED, || read(&log).contains("kiosk: stopped cleanly on SIGTERM"), &ctx);
    assert!(wait_exit(&mut cage_proc.0, STOPPED).is_some(), "cage did not exit with its client\n{}", ctx());
}

/// The kiosk process started with `NOTIFY_SOCKET=socket` (cage's child), from /proc.
fn kiosk_pid(socket: &Path) -> Option<u32> {
    let needle = format!("NOTIFY_SOCKET={}", socket.display());
    let exe = Path::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if Path::new(&*String::from_utf8_lossy(first)) != exe {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            return Some(pid);
        }
    }
    None
}
