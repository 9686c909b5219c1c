//! Durable enqueue of an enrollment with three ~300 KB images (encrypted, one transaction, WAL, synchronous=FULL),
//! against raw SQLite inserts of the same bytes with the same pragmas, measured in the same run. Prints
//! enrollments per second for both and the ratio (targets: >= 200/s, and >= 0.6 of raw).
//!
//! `cargo bench --bench queue -- --quick`

use criterion::{Criterion, criterion_group, criterion_main};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::queue::{NewEnrollment, QueueConfig, QueueHandle};
use rusqlite::{Connection, params};
use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

/// Purge after this many enrollments (untimed) so the database stays small.
const BATCH: u64 = 50;

/// A JPEG of about `target` bytes: a textured noise image encoded at quality 85 (what a sharp photo costs), its
/// size found in two passes.
fn jpeg(seed: u64, target: usize) -> UploadJpeg {
    let make = |w: u32, h: u32| {
        let mut rng = fastrand::Rng::with_seed(seed);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let base = ((x / 8 + y / 8) % 200) as u8;
            image::Rgb([base.wrapping_add(rng.u8(..60)), base.wrapping_add(rng.u8(..60)), rng.u8(..)])
        });
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let cfg = EncodeConfig { max_dimension: w.max(h), max_bytes: 10_000_000, ..EncodeConfig::default() };
        UploadJpeg::from_operator_bytes(&png, &cfg).unwrap()
    };
    let first = make(640, 480);
    let scale = (target as f64 / first.bytes().len() as f64).sqrt();
    make((640.0 * scale) as u32, (480.0 * scale) as u32)
}

fn enrollment(images: &[UploadJpeg; 3], n: u64) -> NewEnrollment {
    NewEnrollment {
        email: Email::parse(&format!("bench{n}@example.com")).unwrap(),
        phone: Phone::parse(&format!("+4479{:07}", n % 10_000_000)).unwrap(),
        front: images[0].clone(),
        back: Some(images[1].clone()),
        side: None,
        face: images[2].clone(),
    }
}

fn open_queue(dir: &Path) -> QueueHandle {
    let cfg = QueueConfig {
        max_pending: 1_000_000,
        max_bytes: u64::MAX / 2,
        disk_headroom_bytes: 0,
        ..QueueConfig::default()
    };
    QueueHandle::open(dir, &cfg, Duration::from_secs(900)).unwrap()
}

/// Enqueues `n` enrollments; returns the time spent enqueueing (purges excluded).
fn run_queue(q: &QueueHandle, images: &[UploadJpeg; 3], n: u64, counter: &mut u64) -> Duration {
    let mut spent = Duration::ZERO;
    let mut refs = Vec::new();
    for _ in 0..n {
        *counter += 1;
        let e = enrollment(images, *counter);
        let t = Instant::now();
        refs.push(q.enqueue(e).unwrap().reference);
        spent += t.elapsed();
        if refs.len() as u64 >= BATCH {
            refs.drain(..).for_each(|r| drop(q.purge(&r).unwrap()));
        }
    }
    refs.drain(..).for_each(|r| drop(q.purge(&r).unwrap()));
    spent
}

fn raw_conn(dir: &Path) -> Connection {
    let c = Connection::open(dir.join("raw.db")).unwrap();
    c.pragma_update(None, "page_size", ekyc_kiosk::queue::PAGE_SIZE).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", 2).unwrap();
    c.pragma_update(None, "secure_delete", 1).unwrap();
    c.pragma_update(None, "journal_size_limit", 8 * 1024 * 1024).unwrap();
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS e (id INTEGER PRIMARY KEY, email TEXT, phone TEXT);
         CREATE TABLE IF NOT EXISTS i (id INTEGER PRIMARY KEY, e INTEGER, data BLOB);",
    )
    .unwrap();
    c
}

/// The same bytes as plain inserts: one transaction per enrollment, a row and three blobs.
fn run_raw(c: &mut Connection, images: &[UploadJpeg; 3], n: u64) -> Duration {
    let mut spent = Duration::ZERO;
    for k in 0..n {
        let t = Instant::now();
        let tx = c.transaction().unwrap();
        tx.execute("INSERT INTO e (email, phone) VALUES (?1, ?2)", params![format!("r{k}@example.com"), "4479"])
            .unwrap();
        let id = tx.last_insert_rowid();
        for img in images {
            tx.execute("INSERT INTO i (e, data) VALUES (?1, ?2)", params![id, img.bytes()]).unwrap();
        }
        tx.commit().unwrap();
        spent += t.elapsed();
        if (k + 1) % BATCH == 0 {
            c.execute_batch("DELETE FROM i; DELETE FROM e; PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        }
    }
    c.execute_batch("DELETE FROM i; DELETE FROM e; PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    spent
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let images = [jpeg(1, 300_000), jpeg(2, 300_000), jpeg(3, 300_000)];
    let sizes: Vec<usize> = images.iter().map(|i| i.bytes().len()).collect();
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let q = open_queue(&dir.path().join("queue"));
    let mut raw = raw_conn(dir.path());
    let mut counter = 0;

    // The headline figures: interleaved rounds of both, so they see the same disk and cache conditions.
    let (rounds, per) = if full { (5, 60) } else { (1, 10) };
    let (mut tq, mut tr) = (Duration::ZERO, Duration::ZERO);
    // Warm-up: both files grow to their working size first.
    run_queue(&q, &images, per, &mut counter);
    run_raw(&mut raw, &images, per);
    for _ in 0..rounds {
        tq += run_queue(&q, &images, per, &mut counter);
        tr += run_raw(&mut raw, &images, per);
    }
    let n = (rounds * per) as f64;
    let (qps, rps) = (n / tq.as_secs_f64(), n / tr.as_secs_f64());
    println!(
        "queue enqueue (images {sizes:?} bytes): {qps:.0} enrollments/s; raw SQLite inserts of the same bytes: \
         {rps:.0}/s; ratio {:.2}{}",
        qps / rps,
        if full { "" } else { " (smoke run, not a measurement)" }
    );

    let mut g = c.benchmark_group("queue");
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    g.bench_function("enqueue_3x300KB_durable", |b| b.iter_custom(|iters| run_queue(&q, &images, iters, &mut counter)));
    g.bench_function("raw_sqlite_3x300KB", |b| b.iter_custom(|iters| run_raw(&mut raw, &images, iters)));
    g.finish();
    q.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
