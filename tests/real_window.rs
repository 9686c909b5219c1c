//! The product as a newcomer meets it: the real binary, on its built-in demo defaults (nothing configured: no
//! config file, no API settings, no replay, no test hook), in a real X window under Xvfb, driven only by synthetic
//! clicks (xdotool) the way a customer taps the touchscreen. It walks a whole application, from Start through
//! consent, the two sides of the demo ID card and the face (each captured automatically by the demo camera), the
//! review, the email and the phone typed on the on-screen keyboard, to the result screen, then checks that the
//! application reached the sandbox. This is the test that would have caught the demo's dead end at step 1: keep it
//! on the default path.
//!
//! The kiosk logs each screen it shows (`kiosk: screen X`); the test waits for those lines with deadlines, and
//! saves a screenshot of every step under `target/real-window/` (their paths are printed when a step fails).
//! Needs `Xvfb`, `xdotool` and ImageMagick's `import` (installed by `.ci/setup`); without them it fails, it
//! never skips.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The window's size: the kiosk's preferred size, and the size of the Xvfb screen.
const W: u32 = 1280;
const H: u32 = 800;
/// Deadline for one automatic capture by the demo camera (a cycle is six seconds; debug builds check slower).
const CAPTURE: Duration = Duration::from_secs(60);
/// Deadline for a screen that follows a tap.
const TAP: Duration = Duration::from_secs(15);
/// Deadline for the application's outcome (saved, sent to the sandbox, answered).
const OUTCOME: Duration = Duration::from_secs(120);

/// Where the controls are in the 1280x800 window (measured on the kiosk's own screenshots, `screenshot --out`).
mod at {
    pub const START: (u32, u32) = (640, 594);
    pub const AGREE: (u32, u32) = (956, 720);
    pub const PHOTOS_ARE_FINE: (u32, u32) = (964, 739);
    pub const EMAIL_FIELD: (u32, u32) = (300, 231);
    pub const PHONE_FIELD: (u32, u32) = (928, 231);
    pub const SEND: (u32, u32) = (1041, 105);

    /// The email keyboard: ten keys a row, full width, rows from `EMAIL_ROW0` every `EMAIL_ROW_STEP` px.
    pub const EMAIL_ROWS: [&str; 4] = ["1234567890", "qwertyuiop", "asdfghjkl@", "zxcvbnm.-_"];
    pub const EMAIL_ROW0: u32 = 361;
    pub const EMAIL_ROW_STEP: u32 = 95;
    pub const DOT_COM: (u32, u32) = (128, 741);

    /// The phone keypad: three keys a row.
    pub const PHONE_ROWS: [&str; 4] = ["123", "456", "789", "+0 "];
    pub const PHONE_COLS: [u32; 3] = [382, 640, 897];
    pub const PHONE_ROW0: u32 = 361;
    pub const PHONE_ROW_STEP: u32 = 95;
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|f| f.is_file()))
        .unwrap_or_else(|| panic!("{tool} is not installed: run .ci/setup (it installs xvfb, xdotool and imagemagick)"))
}

/// An Xvfb server on a free display number, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new(which("Xvfb"))
            .args(["-displayfd", "1", "-screen", "0", &format!("{W}x{H}x24"), "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        // Xvfb writes the display number it chose once it accepts clients.
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

/// The kiosk process, its log file, and where its screenshots go.
struct Kiosk {
    child: Child,
    log: PathBuf,
    shots: PathBuf,
    display: String,
    window: String,
    step: u32,
}

impl Kiosk {
    fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Saves the whole screen as `NN-name.png`.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        self.step += 1;
        let file = self.shots.join(format!("{:02}-{name}.png", self.step));
        let _ = Command::new(which("import"))
            .args(["-display", &self.display, "-window", "root"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        file
    }

    fn fail(&mut self, what: &str) -> ! {
        let shot = self.screenshot("failure");
        let log = self.log_text();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{what}\nscreenshots of every step: {} (last: {})\nkiosk log (last lines):\n{}",
            self.shots.display(),
            shot.display(),
            tail.join("\n")
        );
    }

    /// Waits until the log holds `needle` `count` times (a screen shown again counts again).
    fn wait_log(&mut self, needle: &str, count: usize, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            if self.log_text().matches(needle).count() >= count {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("the kiosk exited ({status}) while waiting for {needle:?}"));
            }
            if Instant::now() >= end {
                self.fail(&format!("{needle:?} did not appear within {deadline:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screen(&mut self, name: &str, deadline: Duration) {
        self.wait_log(&format!("kiosk: screen {name} "), 1, deadline);
        // Let the new screen draw before it is looked at or tapped.
        std::thread::sleep(Duration::from_millis(400));
        self.screenshot(&name.to_lowercase());
    }

    /// A tap at window coordinates, as a finger on the touchscreen.
    fn tap(&mut self, (x, y): (u32, u32)) {
        let ok = Command::new(which("xdotool"))
            .env("DISPLAY", &self.display)
            .args(["mousemove", "--window", &self.window, &x.to_string(), &y.to_string(), "click", "1"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            self.fail(&format!("xdotool could not tap at {x},{y}"));
        }
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Types `text` on the email keyboard (letters, digits and `@ . - _`; a trailing ".com" with its own key).
    fn type_email(&mut self, text: &str) {
        let (body, com) = match text.strip_suffix(".com") {
            Some(b) => (b, true),
            None => (text, false),
        };
        for c in body.chars() {
            let (row, col) = at::EMAIL_ROWS
                .iter()
                .enumerate()
                .find_map(|(r, keys)| keys.find(c).map(|k| (r as u32, k as u32)))
                .unwrap_or_else(|| panic!("no key for {c:?} on the email keyboard"));
            // Ten keys across the full width, 4 px apart.
            let key_w = (W - 9 * 4) as f64 / 10.0;
            let x = (col as f64 * (key_w + 4.0) + key_w / 2.0).round() as u32;
            self.tap((x, at::EMAIL_ROW0 + row * at::EMAIL_ROW_STEP));
        }
        if com {
            self.tap(at::DOT_COM);
        }
    }

    fn type_phone(&mut self, text: &str) {
        for c in text.chars() {
            let (row, col) = at::PHONE_ROWS
                .iter()
                .enumerate()
                .find_map(|(r, keys)| keys.find(c).map(|k| (r as u32, k)))
                .unwrap_or_else(|| panic!("no key for {c:?} on the phone keypad"));
            self.tap((at::PHONE_COLS[col], at::PHONE_ROW0 + row * at::PHONE_ROW_STEP));
        }
    }
}

impl Drop for Kiosk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/real-window/NAME`, emptied: the screenshots of one walk.
fn shots_dir(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("real-window").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The window the kiosk opened, found by its title.
fn find_window(display: &str) -> Option<String> {
    let out = Command::new(which("xdotool"))
        .env("DISPLAY", display)
        .args(["search", "--name", "Open an account"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
}

#[test]
fn a_newcomer_completes_an_application_by_touch_on_the_demo_defaults() {
    let x = Xvfb::start();
    let home = tempfile::tempdir().unwrap();
    // Exactly what the README's run command (`.ci/demo`) gives the binary: nothing configured, a window rather than
    // the full screen. Nothing else from this environment leaks in.
    let mut k = start_kiosk(&x, home.path(), "newcomer", &[]);
    let log = k.log_text();
    assert!(log.contains("run mode demo (nothing is configured"), "nothing configured is a demo:\n{log}");
    k.screenshot("welcome");

    k.tap(at::START);
    k.screen("Consent", TAP);
    k.tap(at::AGREE);
    // The demo camera shows the card's front, then its back, then the face: each is taken automatically.
    k.screen("DocumentFront", TAP);
    k.screen("DocumentBack", CAPTURE);
    k.screen("Face", CAPTURE);
    k.screen("Review", CAPTURE);
    k.tap(at::PHOTOS_ARE_FINE);
    k.screen("Contact", TAP);
    let n = std::process::id() % 100_000;
    let email = format!("newcomer{n}@example.com");
    k.tap(at::EMAIL_FIELD);
    k.type_email(&email);
    k.tap(at::PHONE_FIELD);
    k.type_phone(&format!("+44 7700 9{n:05}"));
    k.screenshot("contact-typed");
    k.tap(at::SEND);
    k.screen("Submitting", TAP);
    k.screen("Result", OUTCOME);

    // The sandbox received it: its state (in the data directory) holds the request with the typed email.
    let state = home.path().join("data/ekyc-kiosk/sandbox-state.json");
    let text = std::fs::read_to_string(&state).unwrap_or_default();
    if !text.contains(&email) {
        k.fail(&format!("the sandbox's state {} does not hold the request for {email}", state.display()));
    }
    // Nothing the customer typed reached the log.
    let log = k.log_text();
    assert!(!log.contains(&email), "the email is in the kiosk's log");
}

/// Starts the kiosk binary on display `x` with only `env` configured (plus the window settings), logging to a
/// file in `home`, with its data in `home/data`; waits for its window. Screenshots go to `target/real-window/NAME`.
fn start_kiosk(x: &Xvfb, home: &Path, name: &str, env: &[(&str, &str)]) -> Kiosk {
    let log = home.join("kiosk.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("DISPLAY", &x.display)
        .env("EKYC_KIOSK_FULLSCREEN", "false")
        .env("EKYC_KIOSK_HIDE_CURSOR", "false")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the kiosk");
    let mut k =
        Kiosk { child, log, shots: shots_dir(name), display: x.display.clone(), window: String::new(), step: 0 };
    k.wait_log("window shown", 1, Duration::from_secs(60));
    let end = Instant::now() + Duration::from_secs(10);
    k.window = loop {
        if let Some(w) = find_window(&x.display) {
            break w;
        }
        if Instant::now() >= end {
            k.fail("no window titled \"Open an account\"");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    k
}

/// Taps Start and checks that no application begins (the kiosk is out of service).
fn start_is_refused(k: &mut Kiosk) {
    k.tap(at::START);
    std::thread::sleep(Duration::from_secs(2));
    if k.log_text().contains("kiosk: screen Consent") {
        k.fail("an out-of-service kiosk let a customer start");
    }
}

/// A kiosk configured for production never falls back to the demo: an API key without `api.base_url` opens the
/// out-of-service screen naming the key (no sandbox starts); with its API but no camera it is out of service, and
/// comes back by itself once the camera is there.
#[test]
fn a_production_kiosk_is_out_of_service_without_its_api_or_camera_and_recovers() {
    let x = Xvfb::start();

    // A key but no api.base_url: before, the built-in sandbox took the application and the customer was told
    // "accepted".
    let home = tempfile::tempdir().unwrap();
    let mut k = start_kiosk(&x, home.path(), "misconfigured", &[("EKYC_API_KEY", "sk_live_example")]);
    k.screenshot("misconfigured");
    let log = k.log_text();
    assert!(log.contains("kiosk out of service") && log.contains("api.base_url"), "{log}");
    assert!(!log.contains("sandbox listening") && !log.contains("sk_live_example"), "{log}");
    start_is_refused(&mut k);
    drop(k);

    // Its API (a sandbox started here stands for it) and camera.source = auto with no camera on this machine,
    // then a camera that appears: a replay folder that does not exist yet, then does.
    let sandbox = ekyc_kiosk::sandbox::Sandbox::start(ekyc_kiosk::sandbox::SandboxOptions::loopback(
        ekyc_kiosk::secret::ApiKey::new("rw-key"),
    ))
    .unwrap();
    let url = sandbox.base_url().to_string();
    let home = tempfile::tempdir().unwrap();
    let mut k = start_kiosk(&x, home.path(), "no-camera", &[("EKYC_API_BASE_URL", &url), ("EKYC_API_KEY", "rw-key")]);
    k.wait_log("the camera is unavailable", 1, Duration::from_secs(15));
    k.screenshot("no-camera");
    let log = k.log_text();
    assert!(log.contains("run mode production") && !log.contains("demo frames"), "{log}");
    start_is_refused(&mut k);
    drop(k);

    let home = tempfile::tempdir().unwrap();
    let frames = home.path().join("frames");
    let source = format!("replay:{}", frames.display());
    let mut k = start_kiosk(
        &x,
        home.path(),
        "camera-returns",
        &[("EKYC_API_BASE_URL", &url), ("EKYC_API_KEY", "rw-key"), ("EKYC_CAMERA_SOURCE", &source)],
    );
    // The replay folder is not there: the camera does not open, and nobody can start.
    k.wait_log("the camera is unavailable", 1, Duration::from_secs(15));
    start_is_refused(&mut k);
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/face.jpg"), frames.join("f.jpg")).unwrap();
    k.wait_log("the camera is available again", 1, Duration::from_secs(20));
    k.screenshot("camera-back");
    k.tap(at::START);
    k.screen("Consent", TAP);
}
