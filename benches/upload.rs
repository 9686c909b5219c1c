//! The uploader end to end over loopback.
//!
//! 1. Drain throughput: applications (demo ID card front and back, selfie) sent from the encrypted queue to the
//!    sandbox, against `curl` posting the same JSON bodies to the same sandbox (E1, E2, E4 per application).
//! 2. Peak memory growth while the queue uploads the largest image the contract allows in one body (the 30 MB base64
//!    limit makes that about 22 MB of JPEG; 25 MB cannot be sent), to a server that discards the body: RSS high-water
//!    mark (VmHWM, reset through /proc/self/clear_refs) over the RSS before the upload. Target: at most 16 MB.
//!
//! `cargo bench --bench upload -- --quick`

#[path = "../tests/support/raw_http.rs"]
mod raw_http;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::queue::{NewEnrollment, QueueConfig, QueueHandle};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use ekyc_kiosk::uploader::{Uploader, UploaderConfig, wait_drained};
use raw_http::{Server, json, read_head};
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "bench-key";

fn demo(name: &str) -> UploadJpeg {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo").join(name)).unwrap();
    UploadJpeg::from_operator_bytes(&bytes, &EncodeConfig::default()).unwrap()
}

fn enrollment(n: u64, front: &UploadJpeg, back: Option<&UploadJpeg>, face: &UploadJpeg) -> NewEnrollment {
    NewEnrollment {
        email: Email::parse(&format!("up{n}@example.com")).unwrap(),
        phone: Phone::parse(&format!("+4479{:07}", n % 10_000_000)).unwrap(),
        front: front.clone(),
        back: back.cloned(),
        side: None,
        face: face.clone(),
    }
}

fn client(url: url::Url) -> ApiClient {
    let cfg = ApiConfig { upload_timeout: Duration::from_secs(120), ..ApiConfig::default() };
    ApiClient::new(&cfg, &FaceMatchConfig::default(), url, ApiKey::new(KEY)).unwrap()
}

/// Enqueues `n` applications, then times the uploader draining them.
fn drain_queue(sb: &Sandbox, n: u64, counter: &AtomicU64, imgs: &(UploadJpeg, UploadJpeg, UploadJpeg)) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), Duration::from_secs(900)).unwrap();
    for _ in 0..n {
        let k = counter.fetch_add(1, Ordering::SeqCst);
        q.enqueue(enrollment(k, &imgs.0, Some(&imgs.1), &imgs.2)).unwrap();
    }
    let t = Instant::now();
    let up = Uploader::spawn(q.clone(), Box::new(client(sb.base_url())), &UploaderConfig::default()).unwrap();
    let r = wait_drained(&q, Instant::now() + Duration::from_secs(300)).unwrap();
    let spent = t.elapsed();
    assert!(r.drained);
    up.shutdown();
    q.shutdown();
    spent
}

fn curl(url: &str, body: &Path) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", &format!("x-api-key: {KEY}"), "-H", "content-type: application/json"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .expect("curl (installed by .ci/setup)");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The same three calls per application with curl, bodies prepared in files beforehand (untimed).
fn drain_curl(sb: &Sandbox, n: u64, counter: &AtomicU64, imgs: &(UploadJpeg, UploadJpeg, UploadJpeg)) -> Duration {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.json");
    std::fs::write(
        &doc,
        serde_json::json!({"frontImage_base64": b64(imgs.0.bytes()), "backImage_base64": b64(imgs.1.bytes())})
            .to_string(),
    )
    .unwrap();
    let face_b64 = b64(imgs.2.bytes());
    let base = sb.base_url().as_str().trim_end_matches('/').to_string();
    let mut spent = Duration::ZERO;
    for _ in 0..n {
        let k = counter.fetch_add(1, Ordering::SeqCst);
        let t = Instant::now();
        let d = curl(&format!("{base}/api/document-authentication"), &doc);
        let id = d["documentIdentificationId"].as_str().expect("document id").to_string();
        spent += t.elapsed();
        // Writing the next body is preparation, not sending: untimed.
        let face = dir.path().join("face.json");
        std::fs::write(
            &face,
            serde_json::json!({"documentIdentificationId": id, "faceImage_base64": face_b64}).to_string(),
        )
        .unwrap();
        let req = dir.path().join("req.json");
        std::fs::write(
            &req,
            serde_json::json!({"email": format!("up{k}@example.com"), "phoneNumber": format!("4479{:07}", k % 10_000_000),
                "documentIdentificationId": id})
            .to_string(),
        )
        .unwrap();
        let t = Instant::now();
        assert!(curl(&format!("{base}/api/face-authentication"), &face)["score"].is_number());
        curl(&format!("{base}/api/kyc-request"), &req);
        spent += t.elapsed();
    }
    spent
}

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A keep-alive server that discards bodies and answers E1, E2 and E4 like the API.
fn discard_server() -> Server {
    Server::start(|mut s| {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok((req, early)) = read_head(&mut s) {
            let len: u64 = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut left = len.saturating_sub(early.len() as u64);
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                match s.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left -= n as u64,
                }
            }
            let answer = if req.target.contains("document") {
                json(200, r#"{"success": true, "documentIdentificationId": "doc-1", "result": {}}"#)
            } else if req.target.contains("face") {
                json(200, r#"{"score": 0.93}"#)
            } else {
                json(201, r#"{"success": true}"#)
            };
            if s.write_all(&answer).is_err() {
                return;
            }
        }
    })
}

/// A noise JPEG of about `target` bytes (quality 95), its size found in two passes.
fn big_jpeg(target: usize) -> UploadJpeg {
    let make = |w: u32, h: u32| {
        let mut rng = fastrand::Rng::with_seed(9);
        let img = image::RgbImage::from_fn(w, h, |_, _| image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let cfg =
            EncodeConfig { quality: 95, max_dimension: w.max(h), max_bytes: 22_400_000, ..EncodeConfig::default() };
        UploadJpeg::from_operator_bytes(&png, &cfg).unwrap()
    };
    let first = make(800, 600);
    // Aim 3% under the target: the encoder refuses to exceed max_bytes.
    let scale = (target as f64 * 0.97 / first.bytes().len() as f64).sqrt();
    make((800.0 * scale) as u32, (600.0 * scale) as u32)
}

fn memory(full: bool) {
    let big = big_jpeg(if full { 22_000_000 } else { 3_000_000 });
    let small = demo("face.jpg");
    let len = big.bytes().len();
    let server = discard_server();
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), Duration::from_secs(900)).unwrap();
    q.enqueue(enrollment(1, &big, None, &small)).unwrap();
    drop(big);
    // Reset the high-water mark, then upload.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let idle = status_kb("VmRSS:");
    let up = Uploader::spawn(q.clone(), Box::new(client(server.url())), &UploaderConfig::default()).unwrap();
    let r = wait_drained(&q, Instant::now() + Duration::from_secs(300)).unwrap();
    let peak = status_kb("VmHWM:");
    up.shutdown();
    q.shutdown();
    assert!(r.drained);
    println!(
        "upload of a {:.1} MB image from the queue: RSS {idle} kB before, peak {peak} kB, growth {:.1} MB \
         (target <= 16 MB){}",
        len as f64 / 1e6,
        peak.saturating_sub(idle) as f64 / 1024.0,
        if full { "" } else { " (smoke run with a smaller image)" }
    );
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    // Memory first, before anything else has grown the heap.
    memory(full);

    let sb = Sandbox::start(SandboxOptions {
        config: SandboxConfig { validation_delay: Duration::ZERO, max_requests: 100_000, ..SandboxConfig::default() },
        ..SandboxOptions::loopback(ApiKey::new(KEY))
    })
    .unwrap();
    let imgs = (demo("id-front.jpg"), demo("id-back.jpg"), demo("face.jpg"));
    let counter = AtomicU64::new(0);
    let n = if full { 10 } else { 1 };
    let tq = drain_queue(&sb, n, &counter, &imgs);
    let tc = drain_curl(&sb, n, &counter, &imgs);
    println!(
        "drain {n} application(s) to the sandbox: queue {:.0} ms each, curl {:.0} ms each (ratio {:.2}){}",
        tq.as_secs_f64() * 1000.0 / n as f64,
        tc.as_secs_f64() * 1000.0 / n as f64,
        tq.as_secs_f64() / tc.as_secs_f64(),
        if full { "" } else { " (smoke run)" }
    );

    let mut g = c.benchmark_group("upload");
    g.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_millis(200));
    g.bench_function("drain_one_application_to_sandbox", |b| {
        b.iter_custom(|iters| drain_queue(&sb, iters, &counter, &imgs))
    });
    g.bench_function("curl_one_application_to_sandbox", |b| {
        b.iter_custom(|iters| drain_curl(&sb, iters, &counter, &imgs))
    });
    g.finish();
    sb.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
