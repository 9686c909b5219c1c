//! Bounded memory, measured: a counting global allocator (this test binary only) records the peak of live heap
//! bytes while the client streams a 20 MB image (about 27 MB of JSON) and while it refuses an endless answer.
//! Neither may grow the heap by more than a small fixed amount. One test in this file, so nothing else allocates
//! in parallel; the test server discards the body into a fixed buffer, so it allocates nothing that grows either.

#[path = "support/raw_http.rs"]
mod raw_http;

use ekyc_kiosk::api::{ApiClient, ApiConfig, ErrorCode, FaceMatchConfig, ImageBody};
use ekyc_kiosk::secret::ApiKey;
use raw_http::{Server, json, read_head};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how far the live heap rose above where it started.
fn peak_growth(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst).saturating_sub(base)
}

#[test]
fn streaming_an_upload_and_refusing_an_endless_answer_keep_the_heap_flat() {
    // Reads each request's body into a fixed buffer; answers a face score, or an endless body for `/endless`.
    let server = Server::start(|mut s| {
        let Ok((req, early)) = read_head(&mut s) else { return };
        let len: u64 = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut left = len - early.len() as u64;
        let mut buf = [0u8; 64 * 1024];
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            match s.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n as u64,
            }
        }
        if req.target.starts_with("/api/requests") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n");
            let chunk = [b' '; 64 * 1024];
            for _ in 0..(64 * 16) {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        } else {
            let _ = s.write_all(&json(200, r#"{"score": 0.93}"#));
        }
    });
    let cfg = ApiConfig {
        upload_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_secs(5),
        max_response_bytes: 64 * 1024,
        ..ApiConfig::default()
    };
    let api = ApiClient::new(&cfg, &FaceMatchConfig::default(), server.url(), ApiKey::new("k")).unwrap();

    let len: u64 = 20 * 1024 * 1024;
    let mut score = None;
    let growth = peak_growth(|| {
        let image = ImageBody::from_reader(Box::new(io::repeat(0xa5).take(len)), len);
        score = Some(api.match_face("doc-1", image).map(|r| r.score));
    });
    assert_eq!(score.unwrap().unwrap(), 0.93);
    // ureq's 128 KiB buffers and the encoder's chunks: a few hundred KiB, against ~27 MB sent.
    assert!(growth < 2 * 1024 * 1024, "the upload grew the heap by {growth} bytes");

    let mut code = None;
    let growth = peak_growth(|| code = Some(api.list_requests(false).unwrap_err().code()));
    assert_eq!(code, Some(ErrorCode::UnexpectedResponse));
    assert!(growth < 1024 * 1024, "an endless answer grew the heap by {growth} bytes");
}
