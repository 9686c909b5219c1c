//! A TCP fault proxy on loopback for tests: forwards to an upstream address and injects latency, a bandwidth
//! limit, a reset after N bytes, a blackhole, or flapping between up and down. The mode can change at any time and
//! applies to live connections. Threads: one accept thread, two pump threads per connection; all stop on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forward untouched.
    Pass,
    /// Delay every chunk by this long, both ways.
    Latency(Duration),
    /// At most this many bytes per second, both ways.
    Bandwidth(u64),
    /// Reset the connection (RST) once this many request bytes have gone upstream.
    ResetAfter(u64),
    /// Accept and read, never forward or answer.
    Blackhole,
    /// Alternate: up (pass) for `up`, then down (new and live connections reset) for `down`.
    Flap { up: Duration, down: Duration },
}

struct Shared {
    mode: Mutex<(Mode, Instant)>,
    stop: AtomicBool,
    upstream: SocketAddr,
    connections: AtomicU64,
    resets: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn mode(&self) -> Mode {
        let (m, since) = *self.mode.lock().unwrap_or_else(|e| e.into_inner());
        match m {
            Mode::Flap { up, down } => {
                let period = (up + down).as_millis().max(1);
                let t = since.elapsed().as_millis() % period;
                if t < up.as_millis() { Mode::Pass } else { Mode::ResetAfter(0) }
            }
            m => m,
        }
    }
}

/// A running proxy.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

/// Closes with RST instead of FIN (SO_LINGER 0).
fn reset(s: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket descriptor and a pointer to a properly sized `linger` for the call's duration.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = s.shutdown(Shutdown::Both);
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (a free port) forwarding to `upstream` (which must be loopback).
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        assert!(upstream.ip().is_loopback(), "the fault proxy only forwards to loopback");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let shared = Arc::new(Shared {
            mode: Mutex::new((Mode::Pass, Instant::now())),
            stop: AtomicBool::new(false),
            upstream,
            connections: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let accept = std::thread::spawn(move || {
            while !sh.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        sh.connections.fetch_add(1, Ordering::SeqCst);
                        let sh2 = sh.clone();
                        std::thread::spawn(move || serve(sh2, client));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultProxy { shared, addr, accept: Some(accept) }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the mode (live connections follow at their next chunk).
    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(|e| e.into_inner()) = (mode, Instant::now());
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections reset by a fault so far.
    pub fn resets(&self) -> u64 {
        self.shared.resets.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in self.shared.open.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

fn serve(sh: Arc<Shared>, client: TcpStream) {
    if let Mode::ResetAfter(0) = sh.mode() {
        sh.resets.fetch_add(1, Ordering::SeqCst);
        reset(&client);
        return;
    }
    let Ok(upstream) = TcpStream::connect_timeout(&sh.upstream, Duration::from_secs(2)) else {
        reset(&client);
        return;
    };
    for s in [&client, &upstream] {
        if let Ok(c) = s.try_clone() {
            sh.open.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    }
    let (c2, u2) = match (client.try_clone(), upstream.try_clone()) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return,
    };
    let sh2 = sh.clone();
    let up = std::thread::spawn(move || pump(&sh2, client, upstream, true));
    pump(&sh, u2, c2, false);
    let _ = up.join();
}

/// Copies `from` to `to` applying the current mode; `request` is the client-to-server direction.
fn pump(sh: &Shared, mut from: TcpStream, mut to: TcpStream, request: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if let Mode::ResetAfter(0) = sh.mode() {
                    sh.resets.fetch_add(1, Ordering::SeqCst);
                    reset(&from);
                    reset(&to);
                    return;
                }
                continue;
            }
            Err(_) => break,
        };
        let mut chunk = &buf[..n];
        match sh.mode() {
            Mode::Pass => {}
            Mode::Latency(d) => std::thread::sleep(d),
            Mode::Bandwidth(bps) => {
                // Send in slices so the rate holds within a chunk.
                let slice = (bps / 20).max(1) as usize;
                while !chunk.is_empty() {
                    let k = slice.min(chunk.len());
                    if to.write_all(&chunk[..k]).is_err() {
                        return;
                    }
                    chunk = &chunk[k..];
                    std::thread::sleep(Duration::from_secs_f64(k as f64 / bps.max(1) as f64));
                }
                continue;
            }
            Mode::ResetAfter(limit) => {
                if request && sent + n as u64 > limit {
                    let k = (limit - sent.min(limit)) as usize;
                    let _ = to.write_all(&chunk[..k]);
                    sh.resets.fetch_add(1, Ordering::SeqCst);
                    reset(&from);
                    reset(&to);
                    return;
                }
            }
            Mode::Blackhole => continue,
            Mode::Flap { .. } => {}
        }
        sent += chunk.len() as u64;
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
