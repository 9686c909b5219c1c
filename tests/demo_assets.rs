//! The demo inputs in `assets/demo/`: a synthetic ID-1 card (front and back) carrying the real public-domain
//! portrait from `tests/fixtures/astronaut.png`, and a selfie of the same person framed differently.
//!
//! `cargo test --test demo_assets -- --ignored regenerate_demo_assets` rewrites the files; the other tests check
//! that the committed files pass the sandbox's rules (recognised, matched, one face) and stay small.

use ekyc_kiosk::sandbox::demo::DEMO_IDENTITY;
use ekyc_kiosk::sandbox::recognize::Recognizer;
use image::{Rgb, RgbImage, imageops};
use std::path::{Path, PathBuf};

/// ID-1 proportions (85.6 x 54 mm) at about 300 dpi.
const CARD_W: u32 = 1012;
const CARD_H: u32 = 638;
const MAX_JPEG_BYTES: usize = 300 * 1024;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn demo(name: &str) -> PathBuf {
    root().join("assets/demo").join(name)
}

// ---- a tiny 5x7 bitmap font -------------------------------------------------------------------------------------

/// Glyph rows, 5 columns each, `#` = ink.
fn glyph(c: char) -> [&'static str; 7] {
    match c {
        'A' => [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
        'B' => ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."],
        'C' => [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."],
        'D' => ["####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."],
        'E' => ["#####", "#....", "#....", "####.", "#....", "#....", "#####"],
        'F' => ["#####", "#....", "#....", "####.", "#....", "#....", "#...."],
        'G' => [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"],
        'H' => ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
        'I' => [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
        'J' => ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."],
        'K' => ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"],
        'L' => ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
        'M' => ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"],
        'N' => ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"],
        'O' => [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
        'P' => ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."],
        'Q' => [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"],
        'R' => ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
        'S' => [".####", "#....", "#....", ".###.", "....#", "....#", "####."],
        'T' => ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."],
        'U' => ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."],
        'V' => ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."],
        'W' => ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."],
        'X' => ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"],
        'Y' => ["#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."],
        'Z' => ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"],
        '0' => [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."],
        '1' => ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."],
        '2' => [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"],
        '3' => ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."],
        '4' => ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."],
        '5' => ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."],
        '6' => ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."],
        '7' => ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."],
        '8' => [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."],
        '9' => [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."],
        '<' => ["...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."],
        '/' => ["....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."],
        '-' => [".....", ".....", ".....", "#####", ".....", ".....", "....."],
        '.' => [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."],
        ',' => [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."],
        ':' => [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."],
        _ => [".....", ".....", ".....", ".....", ".....", ".....", "....."],
    }
}

/// Draws `text` with its top-left corner at (x, y), each font pixel `scale` px square, 1 font pixel of spacing.
fn text(img: &mut RgbImage, x: u32, y: u32, scale: u32, color: Rgb<u8>, s: &str) {
    for (i, c) in s.chars().enumerate() {
        let gx = x + i as u32 * 6 * scale;
        for (row, bits) in glyph(c.to_ascii_uppercase()).iter().enumerate() {
            for (col, b) in bits.chars().enumerate() {
                if b == '#' {
                    fill(img, gx + col as u32 * scale, y + row as u32 * scale, scale, scale, color);
                }
            }
        }
    }
}

fn text_width(scale: u32, s: &str) -> u32 {
    (s.chars().count() as u32 * 6).saturating_sub(1) * scale
}

fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, color);
        }
    }
}

fn rounded_corners(img: &mut RgbImage, r: u32, outside: Rgb<u8>) {
    let (w, h) = img.dimensions();
    for y in 0..h {
        for x in 0..w {
            let cx = if x < r {
                r
            } else if x >= w - r {
                w - r - 1
            } else {
                x
            };
            let cy = if y < r {
                r
            } else if y >= h - r {
                h - r - 1
            } else {
                y
            };
            let (dx, dy) = (x as f64 - cx as f64, y as f64 - cy as f64);
            if dx * dx + dy * dy > (r * r) as f64 {
                img.put_pixel(x, y, outside);
            }
        }
    }
}

/// A pale security background: a vertical gradient with fine guilloche-like waves.
fn background(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let t = y as f64 / h as f64;
        let wave = ((x as f64 / 23.0 + (y as f64 / 41.0).sin() * 3.0).sin() * 0.5 + 0.5) * 10.0;
        let r = 226.0 - 18.0 * t + wave * 0.4;
        let g = 238.0 - 8.0 * t + wave * 0.3;
        let b = 236.0 - 4.0 * t - wave * 0.6;
        Rgb([r as u8, g as u8, b as u8])
    })
}

fn header(img: &mut RgbImage, subtitle: &str) {
    let navy = Rgb([18, 52, 104]);
    fill(img, 0, 0, CARD_W, 104, navy);
    fill(img, 0, 104, CARD_W, 6, Rgb([196, 154, 40]));
    text(img, 36, 22, 5, Rgb([255, 255, 255]), "SANDBOXIA");
    text(img, 36 + text_width(5, "SANDBOXIA") + 30, 40, 3, Rgb([255, 230, 160]), subtitle);
    text(img, 36, 82, 2, Rgb([190, 205, 230]), "REPUBLIC OF SANDBOXIA - DEMO DOCUMENT");
}

fn astronaut() -> RgbImage {
    image::open(root().join("tests/fixtures/astronaut.png")).unwrap().to_rgb8()
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).unwrap();
    out
}

fn front() -> RgbImage {
    let id = DEMO_IDENTITY;
    let mut img = background(CARD_W, CARD_H);
    header(&mut img, "IDENTITY CARD");
    let ink = Rgb([28, 34, 48]);
    let label = Rgb([70, 96, 130]);

    // Portrait: the head and shoulders from the public-domain photo, 4:5.
    let src = astronaut();
    let portrait = imageops::crop_imm(&src, 118, 30, 272, 340).to_image();
    let portrait = imageops::resize(&portrait, 248, 310, imageops::FilterType::CatmullRom);
    fill(&mut img, 38, 138, 260, 322, Rgb([120, 130, 150]));
    imageops::overlay(&mut img, &portrait, 44, 144);

    let x = 336;
    let rows: [(&str, String); 6] = [
        ("SURNAME", id.last_name.to_string()),
        ("GIVEN NAMES", format!("{} {}", id.first_name, id.middle_name)),
        ("DATE OF BIRTH", id.dob.to_string()),
        ("SEX", id.sex.to_string()),
        ("NATIONALITY", format!("{} ({})", id.country, id.iso3)),
        ("DATE OF EXPIRY", id.expiry.to_string()),
    ];
    let mut y = 138;
    for (l, v) in rows.iter() {
        text(&mut img, x, y, 2, label, l);
        text(&mut img, x, y + 20, 3, ink, v);
        y += 56;
    }
    text(&mut img, 700, 250, 2, label, "DATE OF ISSUE");
    text(&mut img, 700, 270, 3, ink, id.issued);
    text(&mut img, 700, 138, 2, label, "DOCUMENT NO.");
    text(&mut img, 700, 158, 3, Rgb([150, 30, 40]), id.document_number);

    // A signature-like scribble under the portrait.
    for i in 0..220u32 {
        let t = i as f64 / 220.0;
        let sx = 52.0 + t * 220.0;
        let sy = 500.0 + (t * 19.0).sin() * 12.0 * (1.0 - t) + (t * 5.0).cos() * 6.0;
        fill(&mut img, sx as u32, sy as u32, 3, 3, Rgb([30, 40, 110]));
    }
    text(&mut img, 44, 528, 2, label, "HOLDER SIGNATURE");
    fill(&mut img, 0, CARD_H - 56, CARD_W, 56, Rgb([236, 214, 214]));
    let warn = "SPECIMEN - NOT A VALID DOCUMENT";
    text(&mut img, (CARD_W - text_width(3, warn)) / 2, CARD_H - 40, 3, Rgb([170, 30, 40]), warn);
    rounded_corners(&mut img, 30, Rgb([255, 255, 255]));
    img
}

/// TD1 machine-readable-zone-like lines (30 characters each), from the demo identity.
fn mrz() -> [String; 3] {
    let id = DEMO_IDENTITY;
    let pad = |s: String| format!("{s:<<30}").chars().take(30).collect::<String>();
    let ymd = |d: &str| d.replace('/', "")[2..].to_string();
    [
        pad(format!("I<{}{}<", id.iso3, id.document_number)),
        pad(format!("{}{}{}{}", ymd(id.dob), id.sex, ymd(id.expiry), id.iso3)),
        pad(format!("{}<<{}<{}", id.last_name, id.first_name, id.middle_name)),
    ]
}

fn back() -> RgbImage {
    let id = DEMO_IDENTITY;
    let mut img = background(CARD_W, CARD_H);
    header(&mut img, "IDENTITY CARD");
    let ink = Rgb([28, 34, 48]);
    let label = Rgb([70, 96, 130]);
    text(&mut img, 40, 136, 2, label, "ADDRESS");
    text(&mut img, 40, 156, 3, ink, id.address);
    text(&mut img, 40, 206, 2, label, "ISSUING AUTHORITY");
    text(&mut img, 40, 226, 3, ink, id.authority);
    // A barcode-like block.
    let mut x = 40;
    for i in 0..90u32 {
        let w = 2 + (i * 7 + i / 3) % 4;
        if i % 2 == 0 {
            fill(&mut img, x, 286, w, 70, ink);
        }
        x += w;
    }
    // The MRZ band.
    fill(&mut img, 0, 400, CARD_W, CARD_H - 400, Rgb([248, 248, 244]));
    for (i, line) in mrz().iter().enumerate() {
        text(&mut img, 46, 428 + i as u32 * 62, 5, Rgb([16, 16, 16]), line);
    }
    rounded_corners(&mut img, 30, Rgb([255, 255, 255]));
    img
}

/// The selfie: the same photograph, framed tightly around the face in portrait orientation, slightly brighter.
fn selfie() -> RgbImage {
    let src = astronaut();
    // The detector finds the face at about (173, 68) to (272, 167): centre it horizontally, eyes in the upper third.
    let crop = imageops::crop_imm(&src, 92, 0, 260, 325).to_image();
    let mut img = imageops::resize(&crop, 480, 600, imageops::FilterType::CatmullRom);
    for p in img.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as f64 * 1.06 + 6.0).min(255.0) as u8;
        }
    }
    img
}

#[test]
#[ignore = "rewrites assets/demo; run by hand after changing the generator"]
fn regenerate_demo_assets() {
    std::fs::create_dir_all(root().join("assets/demo")).unwrap();
    for (name, img, q) in [("id-front.jpg", front(), 90), ("id-back.jpg", back(), 88), ("face.jpg", selfie(), 90)] {
        let bytes = jpeg(&img, q);
        assert!(bytes.len() < MAX_JPEG_BYTES, "{name}: {} bytes", bytes.len());
        std::fs::write(demo(name), &bytes).unwrap();
        if let Some(dir) = std::env::var_os("DEMO_PREVIEW_DIR") {
            let preview = Path::new(&dir).join(name.replace(".jpg", ".png"));
            image::load_from_memory(&bytes).unwrap().save(preview).unwrap();
        }
    }
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(demo(name)).unwrap_or_else(|e| panic!("{name}: {e} (run the ignored regenerate_demo_assets test)"))
}

#[test]
fn committed_demo_files_are_small_card_shaped_jpegs() {
    for (name, want) in
        [("id-front.jpg", Some((CARD_W, CARD_H))), ("id-back.jpg", Some((CARD_W, CARD_H))), ("face.jpg", None)]
    {
        let bytes = read(name);
        assert!(bytes.len() < MAX_JPEG_BYTES, "{name} is {} bytes", bytes.len());
        assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]), "{name} is not a JPEG");
        let img = image::load_from_memory(&bytes).unwrap();
        if let Some(dims) = want {
            assert_eq!((img.width(), img.height()), dims, "{name}");
        }
    }
    assert_ne!(read("face.jpg"), read("id-front.jpg"));
    assert!(demo("PROVENANCE.md").exists());
}

#[test]
fn demo_card_is_recognised_and_the_demo_face_matches_it() {
    let mut r = Recognizer::new().unwrap();
    let portrait = r.document_front(&read("id-front.jpg")).expect("the demo front is recognised");
    r.document_other(&read("id-back.jpg")).expect("the demo back is plausible");
    assert_eq!(r.count_faces(&read("face.jpg")).unwrap(), 1, "exactly one face in face.jpg");
    let face = r.face(&read("face.jpg")).unwrap();
    let score = portrait.similarity(&face);
    let threshold = ekyc_kiosk::sandbox::SandboxConfig::default().face_match_threshold;
    println!("demo face vs demo card: {score:.3} (threshold {threshold})");
    assert!(score >= threshold + 0.1, "score {score} too close to the threshold {threshold}");
}

#[test]
fn the_back_is_not_a_front_and_the_generated_images_match_the_committed_ones_in_shape() {
    let mut r = Recognizer::new().unwrap();
    assert!(r.document_front(&read("id-back.jpg")).is_err(), "the back carries no portrait");
    assert!(r.document_front(&read("face.jpg")).is_err(), "a selfie is not card-shaped");
    assert_eq!(mrz().iter().map(String::len).collect::<Vec<_>>(), [30, 30, 30]);
}
