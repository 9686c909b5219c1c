//! The sandbox as a server: fault injection (in-process and through the control endpoint), the call log, bounded
//! connections, request-head limits and deadlines, loopback-only binding, the state file across restarts, clean
//! shutdown, and the `ekyc-kiosk sandbox` command.

#[path = "support/sandbox_raw.rs"]
mod raw;

use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxEndpoint, SandboxError, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use raw::{KEY, asset, b64, call, get, quick_config, request, start, upload_demo_document};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn forced_responses_any_status_body_and_content_type() {
    let sb = start(quick_config());
    let a = sb.addr();
    sb.faults().force(Some(SandboxEndpoint::List), 2, 502, "<html>bad gateway</html>", "text/html").unwrap();
    for _ in 0..2 {
        let r = get(a, "/api/requests?accepted=true");
        assert_eq!((r.status, r.text().as_str(), r.content_type()), (502, "<html>bad gateway</html>", "text/html"));
    }
    assert_eq!(get(a, "/api/requests?accepted=true").status, 200, "only the next two");
    // Other endpoints are untouched; an empty content type sends none.
    sb.faults().force(None, 1, 200, "", "").unwrap();
    let r = get(a, "/api/requests/x");
    assert_eq!((r.status, r.body.len(), r.header("content-type")), (200, 0, None));

    // Through the control endpoint: a redirect with a Location header.
    let rule = json!({"endpoint": "face", "times": 1, "action": "respond", "status": 307, "body": "",
                      "headers": [["Location", "http://127.0.0.1:9/elsewhere"]]});
    let r = request(a, "POST", "/_sandbox/faults", None, Some(rule.to_string().as_bytes()));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = call(a, "POST", "/api/face-authentication", &json!({}));
    assert_eq!((r.status, r.header("location")), (307, Some("http://127.0.0.1:9/elsewhere")));
    // A truncated answer: the head promises more body than comes before the connection closes.
    let rule = json!({"endpoint": "list", "times": 1, "action": "respond", "status": 200,
                      "body": r#"{"requests": [{"id": "abc"}]}"#, "cut_after": 100});
    assert_eq!(request(a, "POST", "/_sandbox/faults", None, Some(rule.to_string().as_bytes())).status, 201);
    let mut s = raw::connect(a);
    s.write_all(format!("GET /api/requests?accepted=true HTTP/1.1\r\nx-api-key: {KEY}\r\n\r\n").as_bytes()).unwrap();
    let got = raw::read_all(&mut s);
    assert_eq!(got.len(), 100, "the head and 10 bytes of the body");
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    // Bad rules are refused with a reason.
    for bad in [r#"{"action": "respond", "status": 42}"#, r#"{"action": "explode"}"#, "not json"] {
        let r = request(a, "POST", "/_sandbox/faults", None, Some(bad.as_bytes()));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["error"].as_str().is_some());
    }
}

#[test]
fn a_5xx_burst_with_retry_after_then_recovery() {
    let sb = start(quick_config());
    let a = sb.addr();
    let rule = json!({"times": 3, "action": "unavailable", "retry_after": 2});
    assert_eq!(request(a, "POST", "/_sandbox/faults", None, Some(rule.to_string().as_bytes())).status, 201);
    let rules = request(a, "GET", "/_sandbox/faults", None, None).json();
    assert_eq!(rules[0]["action"], "unavailable");
    for path in ["/api/requests?accepted=false", "/api/requests/x", "/api/requests?accepted=true"] {
        let r = get(a, path);
        assert_eq!(
            (r.status, r.header("retry-after"), r.text().as_str()),
            (503, Some("2"), r#"{"error": "service unavailable"}"#)
        );
    }
    assert_eq!(get(a, "/api/requests?accepted=false").status, 200);
    sb.faults().unavailable(Some(SandboxEndpoint::Document), 1, None).unwrap();
    let r = call(a, "POST", "/api/document-authentication", &json!({}));
    assert_eq!((r.status, r.header("retry-after")), (503, None));
}

#[test]
fn latency_and_a_trickled_response() {
    let sb = start(quick_config());
    let a = sb.addr();
    sb.faults().set_latency(Duration::from_millis(400)).unwrap();
    let t = Instant::now();
    assert_eq!(get(a, "/api/requests?accepted=false").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
    // Reset through the control endpoint clears it.
    assert_eq!(request(a, "POST", "/_sandbox/reset", None, None).status, 200);
    assert!(sb.faults().rules().is_empty());

    let rule = json!({"endpoint": "show", "action": "trickle", "bytes": 16, "interval": "20ms"});
    assert_eq!(request(a, "POST", "/_sandbox/faults", None, Some(rule.to_string().as_bytes())).status, 201);
    let mut s = raw::connect(a);
    s.write_all(format!("GET /api/requests/nope HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n\r\n").as_bytes()).unwrap();
    let t = Instant::now();
    let mut reads = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
    let r = raw::parse(&got);
    assert_eq!((r.status, r.text().as_str()), (404, r#"{"error": "request not found"}"#));
    let pieces = got.len().div_ceil(16);
    assert!(reads >= pieces / 2, "{reads} reads for {pieces} pieces");
    assert!(t.elapsed() >= Duration::from_millis(20 * (pieces as u64 - 1)), "{:?}", t.elapsed());
}

#[test]
fn drop_after_body_leaves_the_client_without_an_answer_and_is_logged() {
    let sb = start(quick_config());
    let a = sb.addr();
    sb.faults().drop_after_body(Some(SandboxEndpoint::CreateRequest), 1).unwrap();
    let body =
        json!({"email": "d@example.com", "phoneNumber": "447700900555", "documentIdentificationId": "x"}).to_string();
    let mut s = raw::connect(a);
    s.write_all(
        format!(
            "POST /api/kyc-request HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "no answer expected, got {:?}", String::from_utf8_lossy(&got));
    let calls = request(a, "GET", "/_sandbox/calls", None, None).json();
    let last = calls.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["endpoint"], "create_request");
    assert_eq!(last["status"], serde_json::Value::Null);
    assert_eq!(last["body_complete"], true);
    assert_eq!(last["bytes_received"], body.len());
    // The next call is answered normally (the document id is unknown).
    assert_eq!(
        call(
            a,
            "POST",
            "/api/kyc-request",
            &json!({"email": "d@example.com", "phoneNumber": "447700900555", "documentIdentificationId": "x"})
        )
        .status,
        400
    );
    // The log is the same in process, and can be cleared.
    assert_eq!(sb.calls().len(), 2);
    assert_eq!(request(a, "DELETE", "/_sandbox/calls", None, None).status, 200);
    assert!(sb.calls().is_empty());
}

#[test]
fn refuses_to_bind_a_non_loopback_address() {
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let e = Sandbox::start(SandboxOptions {
            listen: listen.parse().unwrap(),
            api_key: ApiKey::new(KEY),
            state_file: None,
            config: SandboxConfig::default(),
        })
        .unwrap_err();
        assert!(matches!(e, SandboxError::NotLoopback(_)), "{listen}: {e}");
    }
    let e = Sandbox::start(SandboxOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: ApiKey::new("  "),
        state_file: None,
        config: SandboxConfig::default(),
    })
    .unwrap_err();
    assert!(matches!(e, SandboxError::EmptyKey));
    // The control endpoint answers a loopback client (no key needed) and names its routes.
    let sb = start(quick_config());
    let r = request(sb.addr(), "GET", "/_sandbox/rules", None, None);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Face match"));
    assert_eq!(request(sb.addr(), "GET", "/_sandbox/nothing", None, None).status, 404);
}

#[test]
fn bounded_connections_refuse_cleanly_and_recover() {
    let cfg = SandboxConfig { max_connections: 2, header_timeout: Duration::from_secs(5), ..quick_config() };
    let sb = start(cfg);
    let a = sb.addr();
    // Idle connections: two held by the workers, two queued, the rest refused (opened one by one, so the
    // workers have picked up the first ones before the queue fills).
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| {
            let s = raw::connect(a);
            std::thread::sleep(Duration::from_millis(30));
            s
        })
        .collect();
    let t = Instant::now();
    let r = get(a, "/api/requests?accepted=false");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(2));
    drop(idle);
    // Once the idle clients go, the server answers again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(a, "/api/requests?accepted=false");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refusing: {}", r.status);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slow_heads_time_out_and_heads_are_bounded() {
    let cfg = SandboxConfig { header_timeout: Duration::from_millis(500), ..quick_config() };
    let sb = start(cfg);
    let a = sb.addr();
    // A client that sends half a request line and stalls gets a 408.
    let mut s = raw::connect(a);
    s.write_all(b"GET /api/requ").unwrap();
    let t = Instant::now();
    let r = raw::parse(&raw::read_all(&mut s));
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    // A 20 KiB header: 431. Garbage: 400. Both framings at once: 400. Another transfer coding: 501.
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    assert_eq!(raw::raw(a, big.as_bytes()).status, 431);
    assert_eq!(raw::raw(a, b"HELLO\r\n\r\n").status, 400);
    assert_eq!(
        raw::raw(a, b"POST /api/accept HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}").status,
        400
    );
    assert_eq!(raw::raw(a, b"POST /api/accept HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n").status, 501);
    // A chunked body that fits is read like any other.
    let r = raw::raw(
        a,
        format!("PUT /api/accept HTTP/1.1\r\nx-api-key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{{\"id\r\n7\r\n\": \"x\"}}\r\n0\r\n\r\n").as_bytes(),
    );
    assert_eq!((r.status, r.text().as_str()), (400, r#"{"message": "Kyc request not accepted"}"#));
    // Expect: 100-continue is honoured.
    let mut s = raw::connect(a);
    s.write_all(
        format!("PUT /api/accept HTTP/1.1\r\nx-api-key: {KEY}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"{}").unwrap();
    assert_eq!(raw::parse(&raw::read_all(&mut s)).status, 400);
}

#[test]
fn a_body_trickled_below_the_minimum_rate_is_cut_off() {
    let cfg = SandboxConfig { min_body_rate: 1000, body_rate_grace: Duration::from_millis(500), ..quick_config() };
    let sb = start(cfg);
    // 10 bytes a second, well below 1000 B/s: cut off soon after the grace period, long before the 2 min deadline.
    let mut s = raw::connect(sb.addr());
    s.write_all(
        format!("POST /api/face-authentication HTTP/1.1\r\nx-api-key: {KEY}\r\nContent-Length: 100000\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // One byte, then wait up to 100 ms for an answer, until one comes.
    while t.elapsed() < Duration::from_secs(10) {
        s.write_all(b"x").unwrap();
        if s.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
            break;
        }
    }
    s.set_read_timeout(None).unwrap();
    let r = raw::parse(&raw::read_all(&mut s));
    assert_eq!((r.status, r.text().as_str()), (408, r#"{"error": "request body too slow"}"#));
    assert!(t.elapsed() < Duration::from_secs(5), "cut off after {:?}", t.elapsed());
    // A body at a normal pace still arrives whole.
    let r = call(sb.addr(), "POST", "/api/face-authentication", &json!({}));
    assert_ne!(r.status, 408);
}

#[test]
fn control_requests_from_a_web_page_are_refused() {
    let sb = start(quick_config());
    let a = sb.addr();
    let rule = json!({"action": "unavailable"}).to_string();
    let post = |host: &str, marker: bool| {
        let mut head = format!("POST /_sandbox/faults HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n");
        if marker {
            head.push_str("x-sandbox-control: 1\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{rule}", rule.len()));
        raw::raw(a, head.as_bytes())
    };
    // A form a page posts cross-site (no custom header), and a DNS-rebinding page (its own host name).
    let r = post(&a.to_string(), false);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("x-sandbox-control"));
    let r = post("rebind.example:8080", true);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("Host"));
    assert!(sb.faults().rules().is_empty(), "no rule was added");
    // A local tool's request is served.
    assert_eq!(post(&a.to_string(), true).status, 201);
    assert_eq!(post(&format!("localhost:{}", a.port()), true).status, 201);
    assert_eq!(sb.faults().rules().len(), 2);
}

#[test]
fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox-state.json");
    let opts = || SandboxOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: ApiKey::new(KEY),
        state_file: Some(state.clone()),
        config: quick_config(),
    };
    let sb = Sandbox::start(opts()).unwrap();
    let doc = upload_demo_document(sb.addr());
    let req = json!({"email": "s@example.com", "phoneNumber": "4915112345678", "documentIdentificationId": doc});
    assert_eq!(call(sb.addr(), "POST", "/api/kyc-request", &req).status, 201);
    sb.shutdown();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains(&b64(&asset("assets/demo/face.jpg"))[..100]), "no whole images in the state");
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());

    let sb = Sandbox::start(opts()).unwrap();
    let a = sb.addr();
    let list = get(a, "/api/requests?accepted=false").json();
    assert_eq!(list["requests"][0]["email"], "s@example.com");
    // Uniqueness still holds across the restart (with a document uploaded after it).
    let doc2 = upload_demo_document(a);
    let req2 = json!({"email": "s@example.com", "phoneNumber": "4915112345678", "documentIdentificationId": doc2});
    assert_eq!(call(a, "POST", "/api/kyc-request", &req2).status, 409);
    // The document's portrait is biometric and was kept in memory only: the id is now unknown, as when the real
    // service forgets a document, and the client uploads the document again.
    let face = json!({"faceImage_base64": b64(&asset("assets/demo/face.jpg")), "documentIdentificationId": doc});
    let r = call(a, "POST", "/api/face-authentication", &face);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("There is no document identification data with the provided id!"))
    );
    // A corrupt state file is refused, not overwritten.
    sb.shutdown();
    std::fs::write(&state, b"{\"version\": 99}").unwrap();
    assert!(matches!(Sandbox::start(opts()).unwrap_err(), SandboxError::State(_)));
    assert_eq!(std::fs::read(&state).unwrap(), b"{\"version\": 99}");
}

#[test]
fn shutdown_is_prompt_with_connections_open() {
    let sb = start(SandboxConfig { io_timeout: Duration::from_secs(30), ..quick_config() });
    let a = sb.addr();
    let _idle = raw::connect(a);
    let mut half = raw::connect(a);
    half.write_all(b"PUT /api/accept HTTP/1.1\r\nContent-Length: 100\r\nx-api-key: test-key-123\r\n\r\n{").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    sb.shutdown();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The half-sent request's client sees the connection closed, not a hang.
    half.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(half.read(&mut buf), Ok(0) | Err(_)));
}

#[cfg(unix)]
#[test]
fn the_sandbox_command_prints_how_to_use_it_and_stops_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_ekyc-kiosk");

    let out =
        Command::new(bin).args(["sandbox", "--listen", "0.0.0.0:0"]).env("EKYC_DATA_DIR", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    let mut child = Command::new(bin)
        .args(["sandbox", "--listen", "127.0.0.1:0", "--api-key", "cli-key-1"])
        .env("EKYC_DATA_DIR", dir.path())
        .env_remove("EKYC_API_BASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("Ctrl-C")) {
        lines.push(rx.recv_timeout(Duration::from_secs(10)).expect("the banner is printed"));
    }
    let text = lines.join("\n");
    assert!(text.contains("EKYC_API_KEY=cli-key-1"), "{text}");
    let base = lines.iter().find_map(|l| l.strip_prefix("  export EKYC_API_BASE_URL=")).unwrap().to_string();
    let addr: std::net::SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let r = request(addr, "GET", "/api/requests?accepted=true", Some("cli-key-1"), None);
    assert_eq!(r.status, 200);
    assert!(r.json()["requests"].as_array().unwrap().is_empty());

    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(8), "the sandbox did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_embedded_sandbox_uses_a_random_key_and_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ekyc_kiosk::config::Config::default();
    config.storage.data_dir = dir.path().join("data");
    config.sandbox.validation_delay = Duration::ZERO;
    let sb = Sandbox::start_embedded(&config).unwrap();
    assert!(sb.addr().ip().is_loopback());
    assert_eq!(sb.base_url().as_str(), format!("http://{}/", sb.addr()));
    let key = sb.api_key().expose().to_string();
    assert!(key.len() >= 32, "{key}");
    let other = Sandbox::start_embedded(&ekyc_kiosk::config::Config {
        storage: ekyc_kiosk::config::StorageConfig { data_dir: dir.path().join("other") },
        ..Default::default()
    })
    .unwrap();
    assert_ne!(other.api_key().expose(), key, "each start draws a new key");
    // Wrong key refused, right key served; the state lands in the data dir.
    assert_eq!(request(sb.addr(), "GET", "/api/requests?accepted=true", Some(KEY), None).status, 401);
    let r = call_with(sb.addr(), &key);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(dir.path().join("data/sandbox-state.json").exists());
}

fn call_with(addr: std::net::SocketAddr, key: &str) -> raw::Reply {
    let body = json!({"frontImage_base64": b64(&asset("assets/demo/id-front.jpg"))}).to_string();
    request(addr, "POST", "/api/document-authentication", Some(key), Some(body.as_bytes()))
}
