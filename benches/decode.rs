//! Camera frame decoding: a 720p webcam-style MJPEG frame (quality 80, 4:2:2 and 4:2:0, no Huffman tables, as many
//! UVC webcams send) through our path (standard tables inserted, then zune-jpeg, the decoder `image` uses)
//! against libjpeg-turbo (the `turbojpeg` crate, reused decompressor and output buffer) on the same bytes; and a
//! 720p YUYV frame to RGB; and the preview's scaling of a 720p frame to the 640 px the screen gets (ours: a 2x2
//! halving, against `image`'s area filter that it replaced). With `cargo bench --bench decode` it also prints the ours/libjpeg-turbo time ratio
//! (target: at most 1.3). Test frames are built here from `tests/fixtures/astronaut.png` resized to 1280x720 with
//! mild sensor-like noise.

use criterion::{Criterion, criterion_group, criterion_main};
use ekyc_kiosk::camera::mjpeg::{decode_mjpeg, remove_huffman_tables};
use ekyc_kiosk::camera::yuyv::{rgb_to_yuyv, yuyv_to_rgb};
use ekyc_kiosk::view::preview_pixels;
use image::RgbImage;
use std::hint::black_box;
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 720;

fn frame_720p() -> RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/astronaut.png");
    let src = image::open(path).expect("fixture").into_rgb8();
    let mut img = image::imageops::resize(&src, W, H, image::imageops::FilterType::Triangle);
    let mut rng = fastrand::Rng::with_seed(42);
    for v in img.iter_mut() {
        // Sum of three uniforms: roughly Gaussian noise with sigma about 3.
        let n = rng.i32(-3..=3) + rng.i32(-3..=3) + rng.i32(-3..=3);
        *v = (i32::from(*v) + n).clamp(0, 255) as u8;
    }
    img
}

fn webcam_mjpeg(img: &RgbImage, sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 80);
    enc.set_sampling_factor(sampling);
    enc.encode(img.as_raw(), W as u16, H as u16, jpeg_encoder::ColorType::Rgb).expect("encode");
    remove_huffman_tables(&out).expect("strip DHT")
}

struct Turbo {
    d: turbojpeg::Decompressor,
    out: Vec<u8>,
}

impl Turbo {
    fn new() -> Self {
        Turbo { d: turbojpeg::Decompressor::new().expect("turbojpeg"), out: vec![0; (W * H * 3) as usize] }
    }
    fn decode(&mut self, jpeg: &[u8]) {
        let img = turbojpeg::Image {
            pixels: &mut self.out[..],
            width: W as usize,
            pitch: W as usize * 3,
            height: H as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        self.d.decompress(jpeg, img).expect("turbojpeg decode");
    }
}

/// Times `a` and `b` alternately `n` times (so load from other processes hits both alike) and returns, for each,
/// (minimum, median) in milliseconds.
fn side_by_side(mut a: impl FnMut(), mut b: impl FnMut(), n: usize) -> ((f64, f64), (f64, f64)) {
    for _ in 0..3 {
        a();
        b();
    }
    let time = |f: &mut dyn FnMut()| {
        let s = Instant::now();
        f();
        s.elapsed().as_secs_f64() * 1000.0
    };
    let (mut ta, mut tb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        ta.push(time(&mut a));
        tb.push(time(&mut b));
    }
    let stats = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        (t[0], t[t.len() / 2])
    };
    (stats(ta), stats(tb))
}

fn decode(c: &mut Criterion) {
    let img = frame_720p();
    // Only under `cargo bench` (criterion's test mode runs each benchmark once and skips the side-by-side table).
    let measuring = std::env::args().any(|a| a == "--bench");
    for (label, sampling) in
        [("4:2:2", jpeg_encoder::SamplingFactor::R_4_2_2), ("4:2:0", jpeg_encoder::SamplingFactor::R_4_2_0)]
    {
        let mjpeg = webcam_mjpeg(&img, sampling);
        let ours = decode_mjpeg(&mjpeg).expect("our decode");
        let mut turbo = Turbo::new();
        turbo.decode(&mjpeg);
        // Same picture from both decoders (IDCT and upsampling differ slightly).
        let diff = ours.as_raw().iter().zip(&turbo.out).map(|(a, b)| u64::from(a.abs_diff(*b))).sum::<u64>() as f64
            / turbo.out.len() as f64;
        assert!(diff < 3.0, "decoders disagree: mean abs diff {diff}");

        c.bench_function(&format!("mjpeg 720p {label} q80 no-DHT: ekyc (DHT insert + zune-jpeg)"), |b| {
            b.iter(|| decode_mjpeg(black_box(&mjpeg)).expect("decode"))
        });
        c.bench_function(&format!("mjpeg 720p {label} q80 no-DHT: libjpeg-turbo"), |b| {
            b.iter(|| turbo.decode(black_box(&mjpeg)))
        });
        if measuring {
            let ((ours_min, ours_med), (turbo_min, turbo_med)) =
                side_by_side(|| drop(black_box(decode_mjpeg(&mjpeg))), || turbo.decode(black_box(&mjpeg)), 100);
            println!(
                "\nDECODE 720p MJPEG {label} q80 without DHT ({} KiB), min / median of 100 alternating runs: \
                 ekyc {ours_min:.2} / {ours_med:.2} ms, libjpeg-turbo {turbo_min:.2} / {turbo_med:.2} ms, \
                 ratio {:.2} / {:.2} (target <= 1.30); mean abs pixel difference {diff:.2}\n",
                mjpeg.len() / 1024,
                ours_min / turbo_min,
                ours_med / turbo_med,
            );
        }
    }

    let yuyv = rgb_to_yuyv(&img);
    c.bench_function("yuyv 720p -> rgb (BT.601 integer)", |b| {
        b.iter(|| yuyv_to_rgb(W, H, black_box(&yuyv)).expect("convert"))
    });
    if measuring {
        let ((min, med), _) = side_by_side(|| drop(black_box(yuyv_to_rgb(W, H, &yuyv))), || {}, 60);
        println!(
            "\nYUYV 720p -> RGB: min {min:.2} ms, median {med:.2} ms ({:.0} MP/s at the minimum)\n",
            f64::from(W * H) / min / 1000.0
        );
    }

    c.bench_function("preview 720p -> 640 px, mirrored (2x2 halving)", |b| {
        b.iter(|| preview_pixels(black_box(&img), 640, true))
    });
    c.bench_function("preview 720p -> 640 px (image::imageops::thumbnail)", |b| {
        b.iter(|| image::imageops::thumbnail(black_box(&img), 640, 360))
    });
    if measuring {
        let ((ours_min, ours_med), (thumb_min, thumb_med)) = side_by_side(
            || drop(black_box(preview_pixels(&img, 640, true))),
            || drop(black_box(image::imageops::thumbnail(&img, 640, 360))),
            60,
        );
        println!(
            "\nPREVIEW 720p -> 640 px, min / median of 60 alternating runs: ours (2x2 halving, mirrored) \
             {ours_min:.2} / {ours_med:.2} ms, image::imageops::thumbnail {thumb_min:.2} / {thumb_med:.2} ms; \
             at 30 fps ours costs {:.1} % of a core\n",
            ours_med * 30.0 / 10.0
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = decode
}
criterion_main!(benches);
