//! Raw HTTP/1.1 over a TcpStream for the sandbox tests: exact bytes in, exact bytes out (no client library in
//! between), every read under a timeout.

#![allow(dead_code)]

use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

pub const KEY: &str = "test-key-123";

/// A sandbox on 127.0.0.1:0 with the test key and the given config.
pub fn start(config: SandboxConfig) -> Sandbox {
    Sandbox::start(SandboxOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: ApiKey::new(KEY),
        state_file: None,
        config,
    })
    .unwrap()
}

/// Validation immediate, everything else default.
pub fn quick_config() -> SandboxConfig {
    SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() }
}

/// One parsed answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Parses a whole response (head and body up to EOF or Content-Length).
pub fn parse(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])));
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if let Some((_, len)) = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        body.truncate(len.parse().unwrap());
    }
    Reply { status, headers, body }
}

/// Connects with timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until EOF (the sandbox closes every connection after its answer).
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => return out,
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
}

/// Sends raw bytes, returns the parsed answer.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    parse(&read_all(&mut s))
}

/// A request with an optional key and body.
pub fn request(addr: SocketAddr, method: &str, path: &str, key: Option<&str>, body: Option<&[u8]>) -> Reply {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n");
    if let Some(k) = key {
        head.push_str(&format!("x-api-key: {k}\r\n"));
    }
    if path.starts_with("/_sandbox") {
        head.push_str("x-sandbox-control: 1\r\n");
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    raw(addr, &bytes)
}

/// A JSON request with the test key.
pub fn call(addr: SocketAddr, method: &str, path: &str, body: &serde_json::Value) -> Reply {
    let b = body.to_string();
    request(addr, method, path, Some(KEY), Some(b.as_bytes()))
}

/// A GET with the test key.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, Some(KEY), None)
}

pub fn asset(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Uploads the demo card; returns the document id.
pub fn upload_demo_document(addr: SocketAddr) -> String {
    let r = call(
        addr,
        "POST",
        "/api/document-authentication",
        &serde_json::json!({
            "frontImage_base64": b64(&asset("assets/demo/id-front.jpg")),
            "backImage_base64": b64(&asset("assets/demo/id-back.jpg")),
        }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["documentIdentificationId"].as_str().unwrap().to_string()
}

/// Asserts status, exact body and exact content type.
#[track_caller]
pub fn assert_exact(r: &Reply, status: u16, body: &str, content_type: &str) {
    assert_eq!((r.status, r.text().as_str(), r.content_type()), (status, body, content_type));
}
