//! `ekyc-kiosk sandbox`: runs the local sandbox API in the foreground until Ctrl-C or SIGTERM. The main thread
//! waits for the signal; the sandbox's own threads serve.

use super::{Exit, SandboxArgs};
use crate::config::Loaded;
use crate::sandbox::{Sandbox, SandboxOptions, random_key};
use crate::secret::ApiKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Raised by the signal handler.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `on_signal` is an `extern "C"` function that only stores to an atomic, which is async-signal-safe;
    // `signal` is called with valid signal numbers.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Parses `--listen`: an IP address and port (`localhost:PORT` is read as `127.0.0.1:PORT`).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port.parse().map_err(|_| format!("--listen {s}: bad port"))?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| format!("--listen {s}: expected an address and port such as 127.0.0.1:8080"))
}

/// `sandbox`.
pub fn run(loaded: &Loaded, args: SandboxArgs) -> Exit {
    let listen = match parse_listen(&args.listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    if !listen.ip().is_loopback() {
        eprintln!(
            "error: --listen {listen}: the sandbox listens on loopback addresses only (127.0.0.0/8, ::1); it is a \
             test and training server, not a service for the network"
        );
        return Exit::Usage;
    }
    let (api_key, generated) = match args.api_key.as_deref().map(ApiKey::new) {
        Some(k) if k.is_empty() => {
            eprintln!("error: --api-key is empty");
            return Exit::Usage;
        }
        Some(k) => (k, false),
        None => (random_key(), true),
    };
    let cfg = &loaded.config;
    let state_file = cfg.storage.data_dir.join("sandbox-state.json");
    if let Err(e) = create_dir(&cfg.storage.data_dir) {
        eprintln!("error: cannot create storage.data_dir {}: {e}", cfg.storage.data_dir.display());
        return Exit::Fatal;
    }
    let opts = SandboxOptions { listen, api_key, state_file: Some(state_file.clone()), config: cfg.sandbox.clone() };
    let sandbox = match Sandbox::start_with(opts, cfg.api.paths.clone(), cfg.api.fields.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Fatal;
        }
    };
    install_signal_handlers();
    let base = sandbox.base_url().as_str().trim_end_matches('/').to_string();
    // The operator's own sandbox key: printing it is the point (it is how a kiosk is pointed here).
    let key = sandbox.api_key().expose();
    println!("sandbox API listening on {base}");
    println!("api key: {key}{}", if generated { " (generated; pass --api-key to choose one)" } else { "" });
    println!("state:   {}", state_file.display());
    println!("point a kiosk or the CLI at it:");
    println!("  export EKYC_API_BASE_URL={base}");
    println!("  export EKYC_API_KEY={key}");
    println!(
        "fault injection and the call log: {base}/_sandbox/ (loopback only, header x-sandbox-control: 1; see the README)"
    );
    println!("press Ctrl-C to stop");
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("stopping the sandbox");
    sandbox.shutdown();
    Exit::Done
}

/// The data directory, each new level durable in its parent (see `durable::create_dir_all`).
fn create_dir(dir: &std::path::Path) -> std::io::Result<()> {
    crate::durable::create_dir_all(dir, 0o700).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(parse_listen("127.0.0.1:8080").unwrap(), SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(parse_listen("localhost:9").unwrap(), SocketAddr::from(([127, 0, 0, 1], 9)));
        assert!(parse_listen("[::1]:80").unwrap().ip().is_loopback());
        assert!(!parse_listen("0.0.0.0:80").unwrap().ip().is_loopback());
        assert!(parse_listen("nonsense").is_err());
        assert!(parse_listen("localhost:x").is_err());
    }
}
