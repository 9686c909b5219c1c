//! Every main screen rendered to PNG (the same code as `ekyc-kiosk screenshot`) and checked by content: not blank,
//! the theme's colours where they belong (status bar, background, the primary button, the DEMO badge, the offline
//! dot, the preview's subject), and the files written are valid PNGs. No pixel-exact goldens.

use ekyc_kiosk::view::snapshot::{Shot, render_gallery, save_gallery};
use i_slint_backend_testing::{TestingBackend, TestingBackendOptions};
use image::{Rgba, RgbaImage};

/// The testing backend with the real software renderer (so `take_snapshot` draws), mocked time, this thread only.
fn init_rendering_backend() {
    let options = TestingBackendOptions { mock_time: true, threading: false, renderer_name: Some("software".into()) };
    slint::platform::set_platform(Box::new(TestingBackend::new(options))).unwrap();
}

const BACKGROUND: [u8; 3] = [0x0b, 0x1a, 0x33];
const ACCENT: [u8; 3] = [0xff, 0xd2, 0x3f];
const DEMO: [u8; 3] = [0xff, 0x4f, 0xd8];
const OFFLINE_DOT: [u8; 3] = [0xff, 0x6b, 0x6b];
const ONLINE_DOT: [u8; 3] = [0x3d, 0xdc, 0x84];
/// Theme.good: the online dot, and the console's passing checks and connection test.
const GOOD: [u8; 3] = ONLINE_DOT;

fn near(p: &Rgba<u8>, c: [u8; 3], tol: u8) -> bool {
    (0..3).all(|i| p.0[i].abs_diff(c[i]) <= tol)
}

/// Share of pixels in the rectangle close to `c`.
fn share(img: &RgbaImage, (x0, y0, x1, y1): (u32, u32, u32, u32), c: [u8; 3]) -> f64 {
    let mut hit = 0u64;
    let mut all = 0u64;
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            all += 1;
            hit += near(img.get_pixel(x, y), c, 6) as u64;
        }
    }
    hit as f64 / all.max(1) as f64
}

fn distinct_colours(img: &RgbaImage) -> usize {
    let mut seen: Vec<[u8; 4]> = img.pixels().step_by(7).map(|p| p.0).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

fn shot<'a>(shots: &'a [Shot], name: &str) -> &'a RgbaImage {
    &shots.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name}")).image
}

fn check_gallery(width: u32, height: u32) -> Vec<Shot> {
    let shots = render_gallery(slint::PhysicalSize::new(width, height)).unwrap();
    let names: Vec<&str> = shots.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "01-welcome",
            "02-welcome-fr",
            "03-consent",
            "04-document",
            "05-face",
            "06-review",
            "07-contact",
            "08-submitting",
            "09-result",
            "10-retry",
            "11-offline",
            "12-idle",
            "13-staff-pin",
            "14-operator-queue",
            "15-operator-requests",
            "16-operator-delete",
            "17-operator-camera",
            "18-operator-connection"
        ]
    );
    let status_bar = (0, 0, width, 20);
    for s in &shots {
        let img = &s.image;
        assert_eq!((img.width(), img.height()), (width, height), "{}", s.name);
        assert!(distinct_colours(img) > 20, "{}: looks blank", s.name);
        // The status bar is black with the DEMO badge; the page under it has the theme's background.
        assert!(share(img, (0, 0, width / 4, 4), [0, 0, 0]) > 0.9, "{}: no status bar", s.name);
        if s.name != "12-idle" {
            assert!(share(img, status_bar, DEMO) > 0.02, "{}: no DEMO badge", s.name);
        }
        if !matches!(s.name, "12-idle" | "16-operator-delete") {
            assert!(share(img, (0, 40, width, height), BACKGROUND) > 0.05, "{}: background", s.name);
        }
        // Screens with a primary action show it in the accent colour.
        if !matches!(
            s.name,
            "08-submitting" | "12-idle" | "14-operator-queue" | "15-operator-requests" | "17-operator-camera"
        ) {
            assert!(share(img, (0, 0, width, height), ACCENT) > 0.003, "{}: no primary button", s.name);
        }
    }
    // The connection dot: green while online, red once offline.
    assert!(share(shot(&shots, "01-welcome"), status_bar, ONLINE_DOT) > 0.001, "online dot");
    assert_eq!(share(shot(&shots, "01-welcome"), status_bar, OFFLINE_DOT), 0.0);
    assert!(share(shot(&shots, "11-offline"), status_bar, OFFLINE_DOT) > 0.001, "offline dot");
    // The face preview shows the (demo) face: skin tones in the middle of the screen.
    let face = shot(&shots, "05-face");
    let mid = (width / 4, height / 4, 3 * width / 4, 3 * height / 4);
    let skin = (mid.1..mid.3)
        .flat_map(|y| (mid.0..mid.2).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = face.get_pixel(x, y).0;
            p[0] > 200 && p[1] > 160 && p[1] < 200 && p[2] > 130 && p[2] < 170
        })
        .count();
    assert!(skin > 200, "no face in the face preview ({skin} pixels)");
    // The idle overlay darkens the screen under it.
    let dark = |img: &RgbaImage| img.pixels().map(|p| p.0[0] as u64 + p.0[1] as u64 + p.0[2] as u64).sum::<u64>();
    assert!(dark(shot(&shots, "12-idle")) < dark(shot(&shots, "11-offline")), "the idle overlay dims the screen");
    // The console's camera page shows the (demo) face with the checks passing in green; the connection test passed.
    let good = |name: &str| share(shot(&shots, name), (0, 0, width, height), GOOD);
    assert!(good("17-operator-camera") > 0.01, "the camera page's verdict is not green");
    assert!(good("18-operator-connection") > 0.01, "the connection test's result is not green");
    assert_eq!(good("14-operator-queue"), 0.0);
    // Welcome in French differs from English (the strings changed), at the same layout.
    assert_ne!(shot(&shots, "01-welcome").as_raw(), shot(&shots, "02-welcome-fr").as_raw());
    shots
}

#[test]
fn every_main_screen_renders_landscape_and_is_saved_as_png() {
    init_rendering_backend();
    let shots = check_gallery(1280, 800);
    let dir = tempfile::tempdir().unwrap();
    let files = save_gallery(&shots, dir.path()).unwrap();
    assert_eq!(files.len(), shots.len());
    for (f, s) in files.iter().zip(&shots) {
        let back = image::open(f).unwrap().to_rgba8();
        assert_eq!(back.as_raw(), s.image.as_raw(), "{}", f.display());
    }
}

#[test]
fn every_main_screen_renders_on_a_small_landscape_screen() {
    init_rendering_backend();
    check_gallery(800, 480);
}

#[test]
fn every_main_screen_renders_in_portrait() {
    init_rendering_backend();
    check_gallery(800, 1280);
}

#[test]
fn screenshot_command_writes_every_screen_without_a_display() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"))
        .args(["screenshot", "--size", "800x480", "--out"])
        .arg(dir.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listed.lines().count(), 18, "{listed}");
    for line in listed.lines() {
        let img = image::open(line).unwrap();
        assert_eq!((img.width(), img.height()), (800, 480), "{line}");
    }
}

#[test]
fn kiosk_without_a_display_says_what_to_do() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .env_remove("SLINT_BACKEND")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    for advice in ["cage", "--features kms", "screenshot --out"] {
        assert!(err.contains(advice), "{advice:?} missing from: {err}");
    }
}
