//! Upload throughput of the API client: E2 (face match) with a 2 MB image, streamed as base64 JSON over loopback
//! to a server that reads and discards the body into a fixed buffer. Prints the time per upload and the body
//! throughput; the figure covers base64 encoding, ureq's send loop and the loopback socket.
//!
//! `cargo bench --bench api_upload -- --quick`

#[path = "../tests/support/raw_http.rs"]
mod raw_http;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ekyc_kiosk::api::{ApiClient, ApiConfig, FaceMatchConfig, ImageBody};
use ekyc_kiosk::secret::ApiKey;
use raw_http::{Server, json, read_head};
use std::io::{Read, Write};
use std::time::Duration;

/// A keep-alive server that discards each request body and answers a face score.
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
            if s.write_all(&json(200, r#"{"score": 0.93}"#)).is_err() {
                return;
            }
        }
    })
}

fn upload(c: &mut Criterion) {
    let server = discard_server();
    let cfg = ApiConfig { upload_timeout: Duration::from_secs(30), ..ApiConfig::default() };
    let api =
        ApiClient::new(&cfg, &FaceMatchConfig::default(), server.url(), ApiKey::new("bench-key")).expect("client");
    let image: Vec<u8> = (0..2 * 1024 * 1024).map(|i: usize| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let body_len = ImageBody::from_bytes(&image).base64_len();

    let mut group = c.benchmark_group("api_upload");
    group.throughput(Throughput::Bytes(body_len));
    group.sample_size(20);
    group.bench_function("face_2MB_streamed_loopback", |b| {
        b.iter(|| api.match_face("doc-1", ImageBody::from_bytes(&image)).expect("upload"))
    });
    group.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
