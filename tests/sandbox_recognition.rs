//! The sandbox's recognition and face-match rules on real photographs: the demo card and selfie match, other
//! people, a cat and a profile do not, and non-cards are not recognised as documents.

use ekyc_kiosk::capture::face::{DetectorSettings, FaceDetector};
use ekyc_kiosk::sandbox::SandboxConfig;
use ekyc_kiosk::sandbox::recognize::{Recognizer, Refusal};
use image::{DynamicImage, ImageFormat, imageops};
use std::io::Cursor;
use std::path::Path;

fn file(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn png(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

/// Every face of the group photo, cut out with a margin and scaled up like a selfie.
fn group_faces() -> Vec<Vec<u8>> {
    let group = image::load_from_memory(&file("tests/fixtures/group.png")).unwrap();
    let mut d = FaceDetector::new(DetectorSettings { min_face: 20, ..Default::default() }).unwrap();
    let faces = d.detect(&group.to_luma8());
    assert!(faces.len() >= 3, "{faces:?}");
    faces
        .iter()
        .take(6)
        .map(|f| {
            let (cx, cy) = f.center();
            let side = f.width as f64 * 2.2;
            let x = (cx - side / 2.0).max(0.0) as u32;
            let y = (cy - side / 2.0).max(0.0) as u32;
            let s = (side as u32).min(group.width() - x).min(group.height() - y);
            let cut = group.crop_imm(x, y, s, s);
            png(&cut.resize(480, 480, imageops::FilterType::CatmullRom))
        })
        .collect()
}

#[test]
fn only_the_demo_face_matches_the_demo_card() {
    let threshold = SandboxConfig::default().face_match_threshold;
    let mut r = Recognizer::new().unwrap();
    let card = r.document_front(&file("assets/demo/id-front.jpg")).unwrap();

    let demo = r.face(&file("assets/demo/face.jpg")).unwrap();
    let demo_score = card.similarity(&demo);
    // The original photograph, framed differently again, also matches.
    let original = r.face(&file("tests/fixtures/astronaut.png")).unwrap();
    let original_score = card.similarity(&original);
    println!("demo selfie {demo_score:.3}, original photo {original_score:.3}, threshold {threshold}");
    assert!(demo_score >= threshold && original_score >= threshold);

    let mut others = Vec::new();
    for (i, face) in group_faces().iter().enumerate() {
        match r.face(face) {
            Ok(p) => others.push((i, card.similarity(&p))),
            Err(e) => assert_eq!(e, Refusal::NoFace),
        }
    }
    println!("group faces: {others:?}");
    assert!(others.len() >= 3, "the cut-out group faces are found as faces: {others:?}");
    for (i, s) in &others {
        assert!(*s < threshold, "group face {i} scored {s} against the demo card");
    }

    // A cat, a man in profile: no frontal face, or nothing like the portrait.
    for name in ["tests/fixtures/chelsea.png", "tests/fixtures/camera.png"] {
        match r.face(&file(name)) {
            Err(e) => assert_eq!(e, Refusal::NoFace, "{name}"),
            Ok(p) => {
                let s = card.similarity(&p);
                println!("{name}: {s:.3}");
                assert!(s < threshold, "{name} scored {s}");
            }
        }
    }
}

#[test]
fn non_cards_are_not_recognised_as_documents() {
    let mut r = Recognizer::new().unwrap();
    let cases: &[(&str, Refusal)] = &[
        // Square, not card-shaped.
        ("tests/fixtures/astronaut.png", Refusal::NotRecognized),
        // Card-shaped, but no face.
        ("tests/fixtures/chelsea.png", Refusal::NotRecognized),
        // Card-shaped, but several faces.
        ("tests/fixtures/group.png", Refusal::NotRecognized),
        // The back of the card: no portrait.
        ("assets/demo/id-back.jpg", Refusal::NotRecognized),
    ];
    for (name, want) in cases {
        assert_eq!(r.document_front(&file(name)).unwrap_err(), *want, "{name}");
    }
    // A card too small to read.
    let card = image::load_from_memory(&file("assets/demo/id-front.jpg")).unwrap();
    let small = png(&card.resize(300, 190, imageops::FilterType::Triangle));
    assert_eq!(r.document_front(&small).unwrap_err(), Refusal::NotRecognized);
    // The card mirrored: the portrait is on the right.
    let mirrored = png(&card.fliph());
    assert_eq!(r.document_front(&mirrored).unwrap_err(), Refusal::NotRecognized);
    // Not an image at all, and a truncated JPEG.
    assert_eq!(r.document_front(b"GIF89a....").unwrap_err(), Refusal::NotAnImage);
    let jpg = file("assets/demo/id-front.jpg");
    assert_eq!(r.document_front(&jpg[..jpg.len() / 3]).unwrap_err(), Refusal::NotAnImage);
    assert_eq!(r.document_other(&jpg[..200]).unwrap_err(), Refusal::NotAnImage);
}
