//! `inspect FILE [--document] [--json]` run as the real binary: verdict, hints and exit codes (0 accepted,
//! 3 refused, 4 unreadable), including a corrupt file.

mod capture_common;

use capture_common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"))
        .args(args)
        .env("EKYC_DATA_DIR", dir)
        .env_remove("EKYC_CONFIG")
        .env_remove("EKYC_API_BASE_URL")
        .output()
        .unwrap()
}

fn save(dir: &Path, name: &str, img: &image::RgbImage) -> PathBuf {
    let p = dir.join(name);
    img.save(&p).unwrap();
    p
}

/// `img` as a webcam's MJPEG frame: a JPEG whose Huffman tables are left out (the standard ones are implied).
fn webcam_frame(dir: &Path, name: &str, img: &image::RgbImage) -> PathBuf {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(img).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, ekyc_kiosk::camera::mjpeg::remove_huffman_tables(&jpeg).unwrap()).unwrap();
    p
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn inspect_reports_verdict_hints_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // (file, --document, exit code, first hint code or None)
    let cases: Vec<(PathBuf, bool, i32, Option<&str>)> = vec![
        (save(d, "good.png", &good_face()), false, 0, None),
        (save(d, "good.jpg", &good_face()), false, 0, None),
        (save(d, "blurred.png", &blurred(&good_face(), 4.0)), false, 3, Some("hold_still")),
        (save(d, "far.png", &face_frame(&fixture("astronaut.png"), 0.14, 0, 0)), false, 3, Some("move_closer")),
        // A customer standing back: the face is 1/12 of the frame height, and is still found (issue #10).
        (save(d, "far12.png", &face_frame(&fixture("astronaut.png"), 1.0 / 12.0, 0, 0)), false, 3, Some("move_closer")),
        // A frame saved from a webcam's MJPEG stream, without Huffman tables: decoded as the camera path does.
        (webcam_frame(d, "webcam.jpg", &good_face()), false, 0, None),
        (save(d, "group.png", &group()), false, 3, Some("only_one_person")),
        (fixtures.join("camera.png"), false, 3, Some("look_at_camera")),
        (fixtures.join("chelsea.png"), false, 3, Some("look_at_camera")),
        (save(d, "card.png", &card_frame(true, 0.8, false)), true, 0, None),
        (save(d, "back.png", &card_frame(false, 0.8, false)), true, 3, Some("show_photo_side")),
    ];
    for (file, document, code, hint) in cases {
        let f = file.to_str().unwrap();
        let mut args = vec!["inspect", f, "--json"];
        if document {
            args.push("--document");
        }
        let out = run(d, &args);
        assert_eq!(out.status.code(), Some(code), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        let v = json(&out);
        assert_eq!(v["accepted"], code == 0, "{f}: {v}");
        assert!(v["faces"].is_u64() && v["metrics"].is_object() && v["hints"].is_array(), "{v}");
        assert!(v["metrics"]["sharpness"].is_f64(), "{v}");
        assert_eq!(v["hints"][0]["code"].as_str(), hint, "{f}: {v}");
    }
}

#[test]
fn readable_output_lists_the_hints_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let p = save(dir.path(), "far.png", &face_frame(&fixture("astronaut.png"), 0.14, 0, 0));
    let out = run(dir.path(), &["inspect", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("refused: face photo"), "{text}");
    assert!(text.contains("move_closer") && text.contains("Move closer"), "{text}");
    for metric in ["face_share", "face_offset", "sharpness", "brightness", "check_ms"] {
        assert!(text.contains(metric), "{metric} missing: {text}");
    }
}

#[test]
fn unreadable_files_exit_4_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut png = Vec::new();
    good_face().write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let truncated = d.join("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 3]).unwrap();
    let text = d.join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    // (file, words the error must contain)
    let cases = [(truncated, "does not decode"), (text, "not a JPEG or PNG"), (d.join("missing.png"), "cannot read")];
    for (file, words) in cases {
        let out = run(d, &["inspect", file.to_str().unwrap(), "--json"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{}: {err}", file.display());
        assert!(err.contains(words) && !err.contains("panicked"), "{}: {err}", file.display());
        assert!(out.stdout.is_empty());
    }
}
