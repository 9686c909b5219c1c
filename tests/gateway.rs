//! The bank's gateway (issue #13): a real nginx on loopback, started by the test with the files shipped in
//! `assets/deploy/gateway/` (the site-specific examples with only their addresses and paths replaced:
//! `tests/support/gateway_conf.sh`), certificates made by `openssl` (`tests/support/gateway_pki.sh`), and the
//! project's sandbox as the vendor behind it (over TLS, through a stand-in TLS front in the same nginx).
//!
//! - `nginx -t` accepts the shipped files as they are.
//! - A kiosk with its certificate and no vendor key enrolls through the gateway: done, every call reached the
//!   sandbox with the gateway's key (none answered 401), and the access log names the kiosk.
//! - A kiosk certificate calling list, show, accept or delete gets the gateway's JSON 403: `kiosk_not_allowed`.
//! - Another CA's certificate, a revoked one, or none: `certificate_refused`, sending paused with an operator alert,
//!   the application still queued; once the certificate files are fixed it goes out by itself (no restart).
//! - The vendor key is nowhere on the kiosk: configuration, environment, data directory, logs, process memory.
//!
//! nginx (`nginx-light`) and openssl are installed by `.ci/setup`.

use ekyc_kiosk::api::{ApiClient, ApiConfig, ErrorCode, FaceMatchConfig, TlsFiles};
use ekyc_kiosk::contact::{Email, Phone};
use ekyc_kiosk::encode::{EncodeConfig, UploadJpeg};
use ekyc_kiosk::queue::{NewEnrollment, QueueConfig, QueueHandle};
use ekyc_kiosk::sandbox::{Sandbox, SandboxConfig, SandboxOptions};
use ekyc_kiosk::secret::ApiKey;
use ekyc_kiosk::uploader::{Uploader, UploaderConfig, wait_drained};
use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The vendor key: held by the gateway (and the sandbox standing in for the vendor), never by the kiosk.
const VENDOR_KEY: &str = "lapis-vendor-key-7Qx2Lm9Vt4Rz";

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nginx_bin() -> PathBuf {
    // Debian's nginx is in /usr/sbin, which is not always on PATH.
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() { sbin } else { PathBuf::from("nginx") }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_script(script: &str, args: &[&str]) {
    let out = Command::new("sh")
        .arg(manifest().join("tests/support").join(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// nginx in the foreground (`daemon off`), stopped on drop: SIGQUIT, then SIGKILL after a deadline.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by its id.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sandbox, nginx in front of it, and the PKI, in one temporary directory.
struct Gateway {
    dir: tempfile::TempDir,
    port: u16,
    sandbox: Sandbox,
    _nginx: Nginx,
}

impl Gateway {
    fn start() -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        run_script("gateway_pki.sh", &[pki.to_str().unwrap()]);
        let sandbox = Sandbox::start(SandboxOptions {
            config: SandboxConfig { validation_delay: Duration::ZERO, ..SandboxConfig::default() },
            ..SandboxOptions::loopback(ApiKey::new(VENDOR_KEY))
        })
        .unwrap();
        let (port, vendor_port) = (free_port(), free_port());
        let run = dir.path().join("nginx");
        let assets = manifest().join("assets/deploy/gateway");
        run_script(
            "gateway_conf.sh",
            &[
                assets.to_str().unwrap(),
                pki.to_str().unwrap(),
                run.to_str().unwrap(),
                &port.to_string(),
                &vendor_port.to_string(),
                &sandbox.addr().port().to_string(),
                VENDOR_KEY,
            ],
        );
        let conf = run.join("nginx.conf");
        let check = Command::new(nginx_bin())
            .arg("-t")
            .arg("-p")
            .arg(&run)
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("nginx is installed (.ci/setup: nginx-light)");
        assert!(check.status.success(), "nginx -t: {}", String::from_utf8_lossy(&check.stderr));
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(&run)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err()
            || TcpStream::connect(("127.0.0.1", vendor_port)).is_err()
        {
            assert!(Instant::now() < deadline, "nginx did not start: {}", read_lossy(&run.join("logs/error.log")));
            std::thread::sleep(Duration::from_millis(20));
        }
        Gateway { dir, port, sandbox, _nginx: nginx }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn pki(&self, name: &str) -> PathBuf {
        self.dir.path().join("pki").join(name)
    }

    fn access_log(&self) -> String {
        read_lossy(&self.dir.path().join("nginx/logs/ekyc-gateway.access.log"))
    }

    /// A kiosk: its data directory and a configuration file naming its certificate files (holding `cert`'s), no key.
    fn kiosk(&self, name: &str, cert: &str) -> Kiosk {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let k = Kiosk { dir };
        k.install(self, cert);
        let config = format!(
            "[api]\nbase_url = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\nca_file = \"{}\"\n\
             [storage]\ndata_dir = \"{}\"\n[uploader]\nretry_base = \"50ms\"\nretry_cap = \"500ms\"\n\
             key_probe_interval = \"1s\"\n",
            self.url(),
            k.cert().display(),
            k.key().display(),
            self.pki("server-ca.pem").display(),
            k.dir.join("data").display()
        );
        std::fs::write(k.config(), config).unwrap();
        k
    }
}

struct Kiosk {
    dir: PathBuf,
}

impl Kiosk {
    fn cert(&self) -> PathBuf {
        self.dir.join("kiosk.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("kiosk.key")
    }
    fn config(&self) -> PathBuf {
        self.dir.join("kiosk.toml")
    }

    /// Puts `name`'s certificate and key in place as a renewal would: each written aside, then renamed over.
    fn install(&self, gw: &Gateway, name: &str) {
        use std::os::unix::fs::PermissionsExt;
        for (from, to) in [(gw.pki(&format!("{name}.key")), self.key()), (gw.pki(&format!("{name}.pem")), self.cert())]
        {
            let aside = to.with_extension("new");
            std::fs::copy(&from, &aside).unwrap();
            std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::rename(&aside, &to).unwrap();
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ekyc-kiosk"));
        c.arg("--config").arg(self.config()).args(args).stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("EKYC_") {
                c.env_remove(k);
            }
        }
        c.env("RUST_LOG", "info");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn enroll_args(email: &str, phone: &str, wait: &str) -> Vec<String> {
        let demo = |n: &str| manifest().join("assets/demo").join(n).to_str().unwrap().to_string();
        [
            "enroll",
            "--front",
            &demo("id-front.jpg"),
            "--back",
            &demo("id-back.jpg"),
            "--face",
            &demo("face.jpg"),
            "--email",
            email,
            "--phone",
            phone,
            "--wait",
            wait,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn status(&self) -> Value {
        json(&self.run(&["queue", "status", "--json"]))
    }
}

fn json(o: &Output) -> Value {
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&o.stderr)))
}

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, read whole: whether any holds `needle`.
fn tree_holds(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if contains(&std::fs::read(&p).unwrap_or_default(), needle) {
                hits.push(p);
            }
        }
    }
    hits
}

/// Whether the readable memory of process `pid` holds any of `needles` (one scan, each result in order), read
/// through `/proc/PID/mem`. `None` when this user may not read it (the kiosk makes itself non-dumpable, so only
/// root can: CI runs as root).
fn memory_holds(pid: u32, needles: &[&[u8]]) -> Option<Vec<bool>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut found = vec![false; needles.len()];
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1);
    let mut readable_regions = 0;
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else { continue };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else { continue };
        let mut at = start;
        let mut carry: Vec<u8> = Vec::new();
        while at < end {
            let n = (end - at).min(1 << 20) as usize;
            let mut buf = vec![0u8; n];
            if mem.seek(SeekFrom::Start(at)).is_err() || mem.read_exact(&mut buf).is_err() {
                break;
            }
            readable_regions += 1;
            let mut window = std::mem::take(&mut carry);
            window.extend_from_slice(&buf);
            for (i, needle) in needles.iter().enumerate() {
                found[i] = found[i] || contains(&window, needle);
            }
            carry = window[window.len().saturating_sub(longest)..].to_vec();
            at += n as u64;
        }
    }
    (readable_regions > 0).then_some(found)
}

/// Waits for `f` to hold, at most `secs`.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Waits for a child, at most `secs`; kills it if it overstays.
fn wait_child(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("the kiosk did not finish within {secs} s: {}", String::from_utf8_lossy(&out.stderr));
}

fn demo(name: &str) -> UploadJpeg {
    let bytes = std::fs::read(manifest().join("assets/demo").join(name)).unwrap();
    UploadJpeg::from_operator_bytes(&bytes, &EncodeConfig::default()).unwrap()
}

#[test]
fn a_kiosk_enrolls_with_its_certificate_alone_and_may_not_manage_requests() {
    let gw = Gateway::start();
    let k = gw.kiosk("kiosk-a", "kiosk-1");

    let args = Kiosk::enroll_args("gateway.a@example.com", "+447946000201", "30");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = k.run(&args);
    let v = json(&out);
    assert_eq!(v["state"], "done", "{v}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));

    // Every call reached the vendor with the gateway's key: the sandbox refuses any other with 401.
    let calls = gw.sandbox.calls();
    let paths: Vec<(&str, Option<u16>)> = calls.iter().map(|c| (c.path.as_str(), c.status)).collect();
    assert_eq!(
        paths,
        [
            ("/api/document-authentication", Some(200)),
            ("/api/face-authentication", Some(200)),
            ("/api/kyc-request", Some(201))
        ],
        "{calls:?}"
    );
    let direct = ApiClient::new(
        &ApiConfig::default(),
        &FaceMatchConfig::default(),
        gw.sandbox.base_url(),
        ApiKey::new("not-the-vendor-key"),
    )
    .unwrap();
    assert_eq!(direct.list_requests(false).unwrap_err().code(), ErrorCode::InvalidApiKey);
    let log = gw.access_log();
    assert!(
        log.lines()
            .any(|l| l.contains("kiosk=\"CN=kiosk-1,OU=kiosks,O=Test Bank\"")
                && l.contains("\"POST /api/kyc-request\" 201")),
        "{log}"
    );

    // The connection check: the gateway's health route, answered by nginx (the sandbox sees no call).
    let files = TlsFiles { client_cert: Some(k.cert()), client_key: Some(k.key()), ca: Some(gw.pki("server-ca.pem")) };
    let client = ApiClient::with_credentials(
        &ApiConfig::default(),
        &FaceMatchConfig::default(),
        gw.url().parse().unwrap(),
        None,
        files,
    )
    .unwrap();
    assert!(!client.manages_requests());
    let before = gw.sandbox.calls().len();
    client.check_connection().unwrap();
    assert_eq!(gw.sandbox.calls().len(), before, "the connection check reached the vendor");

    // Operator calls with a kiosk certificate: the gateway's 403, typed.
    for args in [
        vec!["requests", "list", "--json"],
        vec!["requests", "show", "some-id", "--json"],
        vec!["requests", "accept", "some-id", "--json"],
        vec!["requests", "delete", "some-id", "--yes", "--json"],
    ] {
        let out = k.run(&args);
        let v = json(&out);
        assert_eq!(v["error"]["code"], "kiosk_not_allowed", "{args:?}: {v}");
        assert_eq!(v["error"]["http_status"], 403, "{args:?}: {v}");
        assert_eq!(out.status.code(), Some(4), "{args:?}");
    }
    assert_eq!(gw.sandbox.calls().len(), before, "an operator call reached the vendor");

    // The vendor key is nowhere on this kiosk (its process memory is checked in the other test, while it runs).
    let key = VENDOR_KEY.as_bytes();
    assert_eq!(tree_holds(&k.dir, key), Vec::<PathBuf>::new());
    assert!(!contains(&out.stderr, key) && !contains(&out.stdout, key));
    assert!(!contains(log.as_bytes(), key), "the gateway's access log shows the key");
    let example = std::fs::read(manifest().join("assets/kiosk.example.toml")).unwrap();
    assert!(!contains(&example, key));

    // A private key others can read is refused at start, naming the key and the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(k.key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = k.run(&["config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("api.client_key_file") && err.contains("chmod 600"), "{err}");
}

#[test]
fn refused_certificates_pause_sending_and_a_fixed_one_goes_out_by_itself() {
    let gw = Gateway::start();
    for (n, refused) in ["stranger", "revoked"].into_iter().enumerate() {
        let k = gw.kiosk(&format!("kiosk-{refused}"), refused);
        let email = format!("gateway.{refused}@example.com");
        let args = Kiosk::enroll_args(&email, &format!("+44794600030{n}"), "60");
        let mut cmd = k.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();

        // Paused with an operator alert; the application stays queued; nothing reached the vendor. (`queue status`
        // creates a missing queue itself: ask only once the kiosk has made its own.)
        assert!(wait_for(20, || k.dir.join("data/queue.db").exists()), "{refused}: the kiosk made no queue");
        std::thread::sleep(Duration::from_millis(300));
        let mut status = Value::Null;
        let paused = wait_for(20, || {
            status = k.status();
            status["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|s| s.as_str().is_some_and(|s| s.contains("refuses this kiosk's certificate")))
            })
        });
        if !paused {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{refused}: no alert: {status}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(status["counts"]["pending"], 1, "{refused}: {status}");
        assert_eq!(status["waiting"], 1, "{refused}: {status}");
        assert!(gw.sandbox.calls().iter().all(|c| c.status != Some(201) || n > 0), "{refused}: a call went through");

        // While it runs: the key is not in its environment or memory (the email it holds is: the scan works).
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        assert!(!contains(&environ, VENDOR_KEY.as_bytes()));
        match memory_holds(pid, &[VENDOR_KEY.as_bytes(), gw.url().as_bytes()]) {
            Some(found) => {
                assert!(found[1], "{refused}: the memory scan did not find the gateway's url: it reads nothing");
                assert!(!found[0], "{refused}: the vendor key is in the kiosk's memory");
            }
            None => eprintln!("{refused}: /proc/{pid}/mem is not readable by this user: memory not scanned"),
        }

        // The certificate is fixed on disk: the running kiosk picks it up and sends.
        k.install(&gw, "kiosk-1");
        let out = wait_child(child, 30);
        let v = json(&out);
        assert_eq!(v["state"], "done", "{refused}: {v}\n{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("refused this kiosk's certificate"), "{stderr}");
        assert!(stderr.contains("the new certificate is used"), "{stderr}");
        assert!(!contains(&out.stderr, VENDOR_KEY.as_bytes()));
        let after = k.status();
        assert_eq!(after["alerts"], serde_json::json!([]), "{refused}: {after}");
        assert_eq!(tree_holds(&k.dir, VENDOR_KEY.as_bytes()), Vec::<PathBuf>::new());
    }
    let log = gw.access_log();
    assert!(log.contains("verify=FAILED:certificate revoked"), "{log}");
}

#[test]
fn without_a_certificate_sending_pauses_and_resumes_once_one_is_installed() {
    let gw = Gateway::start();
    let cfg = ApiConfig { connect_timeout: Duration::from_secs(5), ..ApiConfig::default() };
    let ca = Some(gw.pki("server-ca.pem"));
    // A kiosk still set up the old way: a key (not the vendor's; the gateway replaces it) and no certificate.
    let no_cert = || {
        ApiClient::with_credentials(
            &cfg,
            &FaceMatchConfig::default(),
            gw.url().parse().unwrap(),
            Some(ApiKey::new("old-kiosk-placeholder")),
            TlsFiles { ca: ca.clone(), ..TlsFiles::default() },
        )
        .unwrap()
    };
    let err = no_cert().check_connection().unwrap_err();
    assert_eq!(err.code(), ErrorCode::CertificateRefused, "{err}");
    assert!(err.to_string().contains("no client certificate"), "{err}");

    let up_cfg = UploaderConfig { key_probe_interval: Duration::from_millis(300), ..UploaderConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let q = QueueHandle::open(dir.path(), &QueueConfig::default(), up_cfg.retry_cap).unwrap();
    let saved = q
        .enqueue(NewEnrollment {
            email: Email::parse("gateway.nocert@example.com").unwrap(),
            phone: Phone::parse("+447946000401").unwrap(),
            front: demo("id-front.jpg"),
            back: Some(demo("id-back.jpg")),
            side: None,
            face: demo("face.jpg"),
        })
        .unwrap();
    let uploader = Uploader::spawn(q.clone(), Box::new(no_cert()), &up_cfg).unwrap();
    let alerted = wait_for(20, || {
        q.status().is_ok_and(|s| s.alerts.iter().any(|a| a.contains("refuses this kiosk's certificate")))
    });
    let drained = wait_drained(&q, Instant::now() + Duration::from_millis(500)).unwrap();
    uploader.shutdown();
    assert!(alerted, "no certificate alert");
    assert!(!drained.drained && drained.remaining == 1, "{drained:?}");
    assert!(gw.sandbox.calls().is_empty(), "a call without a certificate reached the vendor");

    // The kiosk's certificate installed (the service restarted with it): the same application goes out.
    let k = gw.kiosk("kiosk-nocert", "kiosk-1");
    let files = TlsFiles { client_cert: Some(k.cert()), client_key: Some(k.key()), ca };
    let client =
        ApiClient::with_credentials(&cfg, &FaceMatchConfig::default(), gw.url().parse().unwrap(), None, files).unwrap();
    let uploader = Uploader::spawn(q.clone(), Box::new(client), &up_cfg).unwrap();
    let drained = wait_drained(&q, Instant::now() + Duration::from_secs(30)).unwrap();
    uploader.shutdown();
    assert!(drained.drained, "{drained:?}");
    let shown = q.show(&saved.reference).unwrap();
    assert_eq!(shown.summary.state.as_str(), "done", "{:?}", shown.summary);
    assert!(q.status().unwrap().alerts.is_empty());
}
