//! Quality-check speed: the full face check on a 720p frame (target: at most 33 ms on one core, so a 30 fps
//! preview never stalls) and the document check. Prints the median times, then runs the criterion benchmarks.
//! Everything runs on this one thread (rustface is built without rayon).

use criterion::{Criterion, criterion_group};
use ekyc_kiosk::capture::{CaptureConfig, Mode, QualityChecker};
use image::{DynamicImage, Rgb, RgbImage};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn astronaut() -> RgbImage {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/astronaut.png");
    image::open(p).expect("fixture").into_rgb8()
}

/// A 1280x720 webcam-like frame: the astronaut's face centred, about 0.3 of the frame height.
fn face_frame() -> RgbImage {
    let a = DynamicImage::ImageRgb8(astronaut()).resize_exact(1100, 1100, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(1280, 720, Rgb([118, 124, 130]));
    image::imageops::overlay(&mut canvas, &a.into_rgb8(), 640 - 477, 360 - 252);
    canvas
}

/// A 1280x720 frame of a customer standing back: the face is 1/12 of the frame height (found by the fine pass).
fn far_frame() -> RgbImage {
    // The astronaut's face is about 0.29 of the photo's height; 1/12 of 720 px is 60 px.
    let side = (60.0 / 0.29) as u32;
    let a = DynamicImage::ImageRgb8(astronaut()).resize_exact(side, side, image::imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(1280, 720, Rgb([118, 124, 130]));
    image::imageops::overlay(&mut canvas, &a.into_rgb8(), 640 - i64::from(side) * 435 / 1000, 300);
    canvas
}

/// A 1280x720 frame with a light ID card (printed lines, the astronaut as portrait) filling the guide.
fn card_frame() -> RgbImage {
    let (cw, ch) = (1024u32, 645u32);
    let (x0, y0) = ((1280 - cw) / 2, (720 - ch) / 2);
    let mut f = RgbImage::from_fn(1280, 720, |x, y| {
        let inside = (x0..x0 + cw).contains(&x) && (y0..y0 + ch).contains(&y);
        let text =
            inside && x > x0 + cw / 3 && ((y - y0) * 18 / ch) % 3 == 1 && !((x - x0) * 40 / cw).is_multiple_of(5);
        match (inside, text) {
            (true, true) => Rgb([45, 45, 50]),
            (true, false) => Rgb([220, 220, 226]),
            _ => Rgb([(70 + (x / 7 + y / 5) % 9) as u8, 62, 52]),
        }
    });
    // The portrait: head and shoulders, about a third of the card wide (as on an ID-1 card).
    let p = DynamicImage::ImageRgb8(astronaut()).resize_exact(640, 640, image::imageops::FilterType::Triangle);
    let p = image::imageops::crop_imm(&p.into_rgb8(), 117, 0, 320, 400).to_image();
    image::imageops::overlay(&mut f, &p, (x0 + 50) as i64, (y0 + 120) as i64);
    f
}

/// Prints a figure; under `cargo test` (an unoptimised build, one run) it is labelled as a smoke run, not a
/// measurement.
fn report(measured: bool, line: &str) {
    if measured {
        println!("{line}");
    } else {
        println!("smoke run, not a measurement (use `cargo bench`): {line}");
    }
}

/// Median wall time and median thread CPU time of `runs` calls, ms.
fn median_ms(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu_ms());
        f();
        cpu.push(thread_cpu_ms() - c);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[runs / 2], cpu[runs / 2])
}

/// CPU time of this thread, ms (unaffected by other processes taking turns on the cores, unlike wall time).
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

fn benches(c: &mut Criterion) {
    let long = std::env::args().any(|a| a == "--bench");
    let runs = if long { 40 } else { 1 };
    let mut q = QualityChecker::new(&CaptureConfig::default()).expect("checker");
    let face = face_frame();
    let face_1080p = DynamicImage::ImageRgb8(face.clone())
        .resize_exact(1920, 1080, image::imageops::FilterType::Triangle)
        .into_rgb8();
    let card = card_frame();
    let v = q.check(Mode::Face, &face);
    let d = q.check(Mode::DocumentFront, &card);
    let fm = median_ms(runs, || {
        black_box(q.check(Mode::Face, black_box(&face)));
    });
    let fm1080 = median_ms(runs, || {
        black_box(q.check(Mode::Face, black_box(&face_1080p)));
    });
    let dm = median_ms(runs, || {
        black_box(q.check(Mode::DocumentFront, black_box(&card)));
    });
    // No face at the coarse scale: both passes run (the worst case of the face check).
    let far = far_frame();
    let vfar = q.check(Mode::Face, &far);
    let farm = median_ms(runs, || {
        black_box(q.check(Mode::Face, black_box(&far)));
    });
    let empty = RgbImage::from_pixel(1280, 720, Rgb([118, 124, 130]));
    let emptym = median_ms(runs, || {
        black_box(q.check(Mode::Face, black_box(&empty)));
    });
    report(
        long,
        &format!(
            "face check 1280x720 (one core): {:.2} ms CPU, {:.2} ms wall (target <= 33 ms), accepted={}, median of \
             {runs}",
            fm.1, fm.0, v.accepted
        ),
    );
    report(
        long,
        &format!(
            "face check 1280x720, customer standing back (face 1/12 of the height, coarse and fine pass): {:.2} ms \
             CPU, {:.2} ms wall (target <= 33 ms), hint={:?}, median of {runs}",
            farm.1,
            farm.0,
            vfar.main_hint().map(|h| h.code())
        ),
    );
    report(
        long,
        &format!(
            "face check 1280x720, nobody there (both passes): {:.2} ms CPU, {:.2} ms wall, median of {runs}",
            emptym.1, emptym.0
        ),
    );
    report(
        long,
        &format!("face check 1920x1080 (one core): {:.2} ms CPU, {:.2} ms wall, median of {runs}", fm1080.1, fm1080.0),
    );
    report(
        long,
        &format!(
            "document check 1280x720 (one core): {:.2} ms CPU, {:.2} ms wall, accepted={}, median of {runs}",
            dm.1, dm.0, d.accepted
        ),
    );

    let mut g = c.benchmark_group("quality_720p");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    g.bench_function("face_check", |b| b.iter(|| q.check(Mode::Face, black_box(&face))));
    g.bench_function("document_check_front", |b| b.iter(|| q.check(Mode::DocumentFront, black_box(&card))));
    g.finish();
}

criterion_group!(quality_benches, benches);

fn main() {
    quality_benches();
    Criterion::default().configure_from_args().final_summary();
}
