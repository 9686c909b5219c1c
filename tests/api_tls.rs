//! TLS failures say what they are: against a loopback HTTPS server whose self-signed certificate the client does not
//! trust (made with the `openssl` command, served by `openssl s_server`), a call fails with `tls_failure`, not
//! `network_unreachable`.

use ekyc_kiosk::api::{ApiClient, ApiConfig, ErrorClass, ErrorCode, FaceMatchConfig};
use ekyc_kiosk::secret::ApiKey;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An `openssl s_server` on 127.0.0.1, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn self_signed_server(dir: &std::path::Path) -> (Server, u16) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command is installed (.ci/setup)");
    assert!(made.success());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

#[test]
fn an_untrusted_certificate_is_a_tls_failure_not_a_network_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = self_signed_server(dir.path());
    let cfg = ApiConfig { connect_timeout: Duration::from_secs(5), ..ApiConfig::default() };
    let url = format!("https://127.0.0.1:{port}/").parse().unwrap();
    let client = ApiClient::new(&cfg, &FaceMatchConfig::default(), url, ApiKey::new("tls-test-key")).unwrap();
    let err = client.list_requests(false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TlsFailure, "{err}");
    assert_eq!(err.code().as_str(), "tls_failure");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(!err.is_ambiguous(), "nothing was sent");
    let text = err.to_string();
    assert!(text.contains("tls") && !text.contains("tls-test-key"), "{text}");
    println!("{text}");
}
