//! Frames for the capture tests, built in memory from the real photos in `tests/fixtures` (see PROVENANCE.md):
//! a webcam-like 1280x720 frame with the face placed and sized as asked, and synthetic variants (blurred, dark,
//! overexposed, two faces, a group, an ID card).
#![allow(dead_code)]

use ekyc_kiosk::capture::face::{DetectorSettings, FaceBox, FaceDetector};
use image::{DynamicImage, Rgb, RgbImage};

pub const W: u32 = 1280;
pub const H: u32 = 720;
const BACKGROUND: Rgb<u8> = Rgb([118, 124, 130]);

pub fn fixture(name: &str) -> RgbImage {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    image::open(&p).unwrap_or_else(|e| panic!("{p}: {e}")).into_rgb8()
}

fn resize(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    DynamicImage::ImageRgb8(img.clone()).resize_exact(w, h, image::imageops::FilterType::CatmullRom).into_rgb8()
}

/// The largest face in a photo at full resolution.
pub fn face_in(img: &RgbImage) -> FaceBox {
    let mut d = FaceDetector::new(DetectorSettings { min_face: 20, ..Default::default() }).unwrap();
    d.detect(&DynamicImage::ImageRgb8(img.clone()).to_luma8())[0]
}

/// A 1280x720 frame with `photo` scaled so its face is `share` of the frame height, the face centre moved by
/// (`dx`, `dy`) from the frame centre.
pub fn face_frame(photo: &RgbImage, share: f64, dx: i64, dy: i64) -> RgbImage {
    let f = face_in(photo);
    let s = share * H as f64 / f.height as f64;
    let r = resize(photo, (photo.width() as f64 * s) as u32, (photo.height() as f64 * s) as u32);
    let (cx, cy) = f.center();
    let mut canvas = RgbImage::from_pixel(W, H, BACKGROUND);
    image::imageops::overlay(&mut canvas, &r, W as i64 / 2 - (cx * s) as i64 + dx, H as i64 / 2 - (cy * s) as i64 + dy);
    canvas
}

/// The astronaut, well placed: the frame that should be accepted.
pub fn good_face() -> RgbImage {
    face_frame(&fixture("astronaut.png"), 0.3, 0, 0)
}

pub fn blurred(img: &RgbImage, sigma: f32) -> RgbImage {
    DynamicImage::ImageRgb8(img.clone()).blur(sigma).into_rgb8()
}

/// Every channel multiplied by `k` and shifted by `add`, clamped.
pub fn exposed(img: &RgbImage, k: f64, add: f64) -> RgbImage {
    let mut out = img.clone();
    for p in out.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as f64 * k + add).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Two copies of the astronaut's head and shoulders side by side.
pub fn two_faces() -> RgbImage {
    let a = fixture("astronaut.png");
    let f = face_in(&a);
    let s = 0.28 * H as f64 / f.height as f64;
    let r = resize(&a, (a.width() as f64 * s) as u32, (a.height() as f64 * s) as u32);
    let (cx, cy) = f.center();
    let crop_w = (f.width as f64 * s * 2.0) as u32;
    let crop =
        image::imageops::crop_imm(&r, ((cx * s) as u32).saturating_sub(crop_w / 2), 0, crop_w, r.height()).to_image();
    let mut canvas = RgbImage::from_pixel(W, H, BACKGROUND);
    for centre in [W as i64 / 2 - crop_w as i64 / 2 - 20, W as i64 / 2 + crop_w as i64 / 2 + 20] {
        image::imageops::overlay(&mut canvas, &crop, centre - crop_w as i64 / 2, H as i64 / 2 - (cy * s) as i64);
    }
    canvas
}

/// A part of the group photo with several people, scaled so the faces are webcam-sized.
pub fn group() -> RgbImage {
    let g = fixture("group.png");
    let crop = image::imageops::crop_imm(&g, 240, 150, 360, 200).to_image();
    let r = resize(&crop, 1152, 640);
    let mut canvas = RgbImage::from_pixel(W, H, BACKGROUND);
    image::imageops::overlay(&mut canvas, &r, 64, 40);
    canvas
}

/// Deterministic noise in -amp..=amp.
pub struct Noise(u32);
impl Noise {
    pub fn new(seed: u32) -> Noise {
        Noise(seed.max(1))
    }
    pub fn next(&mut self, amp: i32) -> i32 {
        self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        ((self.0 >> 16) % (2 * amp as u32 + 1)) as i32 - amp
    }
}

/// An ID-1 card (light, with printed lines, the astronaut as the portrait on the front) on a textured desk, the
/// card `fill` of the frame width and centred, optionally with a blown-out glare patch.
pub fn card_frame(front: bool, fill: f64, glare: bool) -> RgbImage {
    let mut n = Noise::new(11);
    let mut canvas = RgbImage::from_fn(W, H, |x, y| {
        let v = 70 + ((x / 7 + y / 5) % 9) as i32 + n.next(12);
        Rgb([v as u8, (v - 8) as u8, (v - 18) as u8])
    });
    let cw = (fill * W as f64) as u32;
    let ch = (cw as f64 / 1.586) as u32;
    let (x0, y0) = ((W - cw) / 2, (H - ch) / 2);
    for y in 0..ch {
        for x in 0..cw {
            let text = x > cw / 3 && (y * 18 / ch) % 3 == 1 && !(x * 40 / cw).is_multiple_of(5) && y < ch * 5 / 6;
            let v = if text { 45 } else { 222 - (y * 20 / ch) as i32 + n.next(4) };
            canvas.put_pixel(x0 + x, y0 + y, Rgb([v as u8, v as u8, (v + 6).min(255) as u8]));
        }
    }
    if front {
        let a = fixture("astronaut.png");
        let f = face_in(&a);
        // The portrait: head and shoulders, a quarter of the card wide.
        let pw = cw / 4;
        let s = pw as f64 / (f.width as f64 * 2.2);
        let r = resize(&a, (a.width() as f64 * s) as u32, (a.height() as f64 * s) as u32);
        let (cx, cy) = f.center();
        let ph = (pw as f64 * 1.3) as u32;
        let crop = image::imageops::crop_imm(
            &r,
            ((cx * s) as u32).saturating_sub(pw / 2),
            ((cy * s) as u32).saturating_sub(ph / 2),
            pw,
            ph,
        )
        .to_image();
        image::imageops::overlay(&mut canvas, &crop, (x0 + cw / 16) as i64, (y0 + ch / 5) as i64);
    }
    if glare {
        let (gx, gy, r) = (x0 + cw * 2 / 3, y0 + ch / 3, ch / 5);
        for y in gy - r..gy + r {
            for x in gx - r..gx + r {
                let d = ((x as i64 - gx as i64).pow(2) + (y as i64 - gy as i64).pow(2)) as f64;
                if d < (r * r) as f64 {
                    canvas.put_pixel(x, y, Rgb([255, 255, 255]));
                }
            }
        }
    }
    canvas
}

/// A frontal face in `frame` turned away by about `amount` (0..1; 0.5 is roughly a 30° turn), approximated in 2-D:
/// the face's left half is squeezed towards its edge and the right half stretched, as the near half of a turning
/// head grows and the far half shrinks. No 3-D model: a stand-in for a real turned head, used to check that the
/// head-pose measure falls as the head turns. Rows are unchanged; the rest of the frame too.
pub fn yawed(frame: &RgbImage, face: FaceBox, amount: f64) -> RgbImage {
    let mut out = frame.clone();
    // The head is wider than the detector's box: warp a little beyond it.
    let (cx, _) = face.center();
    let half = face.width as f64 * 0.7;
    let (x0, x1) = ((cx - half).max(0.0), (cx + half).min(frame.width() as f64 - 1.0));
    let y0 = (face.y as f64 - face.height as f64 * 0.3).max(0.0) as u32;
    let y1 = ((face.y as f64 + face.height as f64 * 1.3) as u32).min(frame.height());
    let mid = 0.5 - amount.clamp(0.0, 1.0) * 0.3;
    for y in y0..y1 {
        for x in x0 as u32..=x1 as u32 {
            let u = (x as f64 - x0) / (x1 - x0);
            let src = if u < mid { 0.5 * u / mid } else { 0.5 + 0.5 * (u - mid) / (1.0 - mid) };
            let sx = (x0 + src * (x1 - x0)).round().clamp(0.0, frame.width() as f64 - 1.0) as u32;
            out.put_pixel(x, y, *frame.get_pixel(sx, y));
        }
    }
    out
}

/// Each face of the group photo, on its own: cropped with its head and shoulders and placed in a webcam-like frame
/// at `share` of the frame height (frontal faces of other people than the astronaut, for the head-pose figures).
pub fn group_faces(share: f64) -> Vec<RgbImage> {
    let g = fixture("group.png");
    let mut d = FaceDetector::new(DetectorSettings { min_face: 20, ..Default::default() }).unwrap();
    let faces = d.detect(&DynamicImage::ImageRgb8(g.clone()).to_luma8());
    faces
        .into_iter()
        .map(|f| {
            let (cx, cy) = f.center();
            let side = f.height as f64 * 2.2;
            let (x, y) = ((cx - side / 2.0).max(0.0) as u32, (cy - side / 2.2).max(0.0) as u32);
            let w = (side as u32).min(g.width() - x);
            let h = (side as u32).min(g.height() - y);
            let crop = image::imageops::crop_imm(&g, x, y, w, h).to_image();
            face_frame(&crop, share, 0, 0)
        })
        .collect()
}
