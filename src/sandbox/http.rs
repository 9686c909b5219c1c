//! A small HTTP/1.1 implementation for the sandbox: request heads read under a size limit and a deadline, bodies
//! (`Content-Length` or chunked) read through a capped reader, and responses written whole or trickled. One request
//! per connection (`Connection: close` on every response). Runs on a sandbox worker thread.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 100;

/// Why a request could not be read. Each maps to the status answered (if any).
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection before sending a request (nothing to answer).
    Closed,
    /// The head did not arrive in time (408).
    Timeout,
    /// The head is larger than [`MAX_HEAD_BYTES`] (431).
    HeadTooLarge,
    /// The request is malformed (400), with a short reason.
    Malformed(&'static str),
    /// A transfer coding other than chunked (501).
    Unsupported,
    /// An I/O error (nothing to answer).
    Io(io::Error),
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Head {
    /// Method, as sent (upper case by convention).
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query (without `?`), if any.
    pub query: Option<String>,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// How the body is framed.
    pub framing: Framing,
}

/// Body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Head {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// A query parameter's raw value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Reads one line (through `\n`) of at most `budget` bytes, before `deadline`: each read waits at most until the
/// deadline (and at most `io_timeout`, the socket's usual timeout).
fn read_line_bounded(
    r: &mut BufReader<TcpStream>,
    out: &mut Vec<u8>,
    budget: &mut usize,
    deadline: Instant,
    io_timeout: Duration,
) -> Result<(), ReadError> {
    loop {
        if r.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            r.get_ref().set_read_timeout(Some(left.min(io_timeout))).map_err(ReadError::Io)?;
        }
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(ReadError::Timeout);
            }
            Err(e) => return Err(ReadError::Io(e)),
        };
        if buf.is_empty() {
            return Err(if out.is_empty() { ReadError::Closed } else { ReadError::Malformed("truncated head") });
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if take > *budget {
            return Err(ReadError::HeadTooLarge);
        }
        *budget -= take;
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            return Ok(());
        }
    }
}

/// Reads a request head within `deadline`.
pub fn read_head(r: &mut BufReader<TcpStream>, deadline: Instant, io_timeout: Duration) -> Result<Head, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    let mut line = Vec::new();
    // Tolerate empty lines before the request line (RFC 9112 section 2.2).
    loop {
        line.clear();
        read_line_bounded(r, &mut line, &mut budget, deadline, io_timeout)?;
        if line != b"\r\n" && line != b"\n" {
            break;
        }
        if Instant::now() > deadline {
            return Err(ReadError::Timeout);
        }
    }
    let text = std::str::from_utf8(&line).map_err(|_| ReadError::Malformed("request line is not text"))?;
    let mut parts = text.trim_end_matches(['\r', '\n']).split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed("bad request line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(ReadError::Malformed("unsupported http version"));
    }
    let method = method.to_string();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ReadError::Malformed("bad method"));
    }
    if !target.starts_with('/') {
        return Err(ReadError::Malformed("bad request target"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };

    let mut headers = Vec::new();
    loop {
        if Instant::now() > deadline {
            return Err(ReadError::Timeout);
        }
        line.clear();
        read_line_bounded(r, &mut line, &mut budget, deadline, io_timeout)?;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ReadError::Malformed("obsolete header folding"));
        }
        let text = std::str::from_utf8(&line).map_err(|_| ReadError::Malformed("header is not text"))?;
        let (name, value) = text.split_once(':').ok_or(ReadError::Malformed("header without colon"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(ReadError::Malformed("bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }

    let mut framing = Framing::None;
    let te: Vec<&str> = headers.iter().filter(|(n, _)| n == "transfer-encoding").map(|(_, v)| v.as_str()).collect();
    let cl: Vec<&str> = headers.iter().filter(|(n, _)| n == "content-length").map(|(_, v)| v.as_str()).collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(ReadError::Malformed("both transfer-encoding and content-length"));
        }
        if te.len() != 1 || !te[0].eq_ignore_ascii_case("chunked") {
            return Err(ReadError::Unsupported);
        }
        framing = Framing::Chunked;
    } else if let Some(first) = cl.first() {
        if cl.iter().any(|v| v != first) {
            return Err(ReadError::Malformed("conflicting content-length"));
        }
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReadError::Malformed("bad content-length"));
        }
        let n: u64 = first.parse().map_err(|_| ReadError::Malformed("bad content-length"))?;
        framing = if n == 0 { Framing::None } else { Framing::Length(n) };
    }
    Ok(Head { method, path, query, headers, framing })
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// More than the cap arrived (or was announced); reading stopped there.
    TooLarge,
    /// The body did not arrive before the deadline.
    Timeout,
    /// After the grace period the body was arriving slower than the minimum rate (a client holding a worker
    /// with a trickle); cut off without waiting for the whole deadline.
    TooSlow,
    /// Bad chunk framing, or the peer closed early.
    Malformed,
    /// Another I/O error.
    Io(io::Error),
}

/// How long a body may take: a deadline for the whole, a timeout for each read, and a minimum average rate once a
/// grace period has passed.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// When reading starts.
    pub start: Instant,
    /// The whole body by then.
    pub deadline: Instant,
    /// Each read at most this long.
    pub io_timeout: Duration,
    /// Bytes per second on average since `start`, checked once `grace` has passed (0: no minimum).
    pub min_rate: u64,
    /// Time before the minimum rate applies (slow start, a client's first retransmissions).
    pub grace: Duration,
}

impl BodyPace {
    /// `Err(TooSlow)` when, after the grace period, fewer than `min_rate` bytes per second have arrived.
    fn check_rate(&self, received: u64) -> Result<(), BodyError> {
        let elapsed = self.start.elapsed();
        if self.min_rate == 0 || elapsed <= self.grace {
            return Ok(());
        }
        let expected = (self.min_rate as f64 * elapsed.as_secs_f64()) as u64;
        if received < expected { Err(BodyError::TooSlow) } else { Ok(()) }
    }
}

/// Reads a whole body of at most `cap` bytes. A `Content-Length` above the cap is refused before anything is read;
/// a chunked body is read until the cap is passed, then refused. `received` counts the body bytes read.
pub fn read_body(
    r: &mut BufReader<TcpStream>,
    framing: Framing,
    cap: u64,
    pace: &BodyPace,
    received: &mut u64,
) -> Result<Vec<u8>, BodyError> {
    let (deadline, io_timeout) = (pace.deadline, pace.io_timeout);
    match framing {
        Framing::None => Ok(Vec::new()),
        Framing::Length(n) if n > cap => Err(BodyError::TooLarge),
        Framing::Length(n) => {
            let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
            read_exact_into(r, n, &mut out, pace, received)?;
            Ok(out)
        }
        Framing::Chunked => {
            let mut out = Vec::new();
            loop {
                let mut line = Vec::new();
                let mut budget = 1024;
                read_line_bounded(r, &mut line, &mut budget, deadline, io_timeout).map_err(|e| match e {
                    ReadError::Timeout => BodyError::Timeout,
                    ReadError::Io(e) => BodyError::Io(e),
                    _ => BodyError::Malformed,
                })?;
                let text = std::str::from_utf8(&line).map_err(|_| BodyError::Malformed)?;
                let size_text = text.trim_end_matches(['\r', '\n']).split(';').next().unwrap_or("").trim();
                if size_text.is_empty() || size_text.len() > 15 {
                    return Err(BodyError::Malformed);
                }
                let size = u64::from_str_radix(size_text, 16).map_err(|_| BodyError::Malformed)?;
                if size == 0 {
                    // Trailers, then the final empty line.
                    loop {
                        let mut t = Vec::new();
                        let mut budget = 4096;
                        read_line_bounded(r, &mut t, &mut budget, deadline, io_timeout)
                            .map_err(|_| BodyError::Malformed)?;
                        if t == b"\r\n" || t == b"\n" {
                            return Ok(out);
                        }
                    }
                }
                if out.len() as u64 + size > cap {
                    // Read what fits, so the bytes counted are real, then stop.
                    let room = cap - out.len() as u64;
                    read_exact_into(r, room, &mut out, pace, received)?;
                    return Err(BodyError::TooLarge);
                }
                read_exact_into(r, size, &mut out, pace, received)?;
                let mut crlf = Vec::new();
                let mut budget = 2;
                read_line_bounded(r, &mut crlf, &mut budget, deadline, io_timeout).map_err(|_| BodyError::Malformed)?;
                if crlf != b"\r\n" && crlf != b"\n" {
                    return Err(BodyError::Malformed);
                }
            }
        }
    }
}

fn read_exact_into(
    r: &mut BufReader<TcpStream>,
    mut n: u64,
    out: &mut Vec<u8>,
    pace: &BodyPace,
    received: &mut u64,
) -> Result<(), BodyError> {
    let mut buf = [0u8; 64 * 1024];
    while n > 0 {
        let left = pace.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BodyError::Timeout);
        }
        pace.check_rate(*received)?;
        if r.buffer().is_empty() {
            r.get_ref().set_read_timeout(Some(left.min(pace.io_timeout))).map_err(BodyError::Io)?;
        }
        let want = n.min(buf.len() as u64) as usize;
        match r.read(&mut buf[..want]) {
            Ok(0) => return Err(BodyError::Malformed),
            Ok(k) => {
                out.extend_from_slice(&buf[..k]);
                n -= k as u64;
                *received += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(BodyError::Timeout);
            }
            Err(e) => return Err(BodyError::Io(e)),
        }
    }
    Ok(())
}

/// Reads and discards up to `limit` bytes, or until EOF, an error, or `deadline` (a lingering close: the client gets
/// to finish sending, so it reads our early answer instead of a reset).
pub fn drain(stream: &mut TcpStream, limit: u64, deadline: Instant) -> u64 {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0;
    while total < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left.min(Duration::from_millis(200)))).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => total += k as u64,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    total
}

/// A response to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` (omitted when empty).
    pub content_type: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response with the body exactly as given.
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// A JSON response serialised from a value.
    pub fn json_value(status: u16, v: &serde_json::Value) -> Response {
        Response::json(status, v.to_string())
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response { status, content_type: "text/plain".into(), headers: Vec::new(), body: body.into().into_bytes() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        if !self.content_type.is_empty() {
            out.extend_from_slice(format!("Content-Type: {}\r\n", self.content_type).as_bytes());
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\nConnection: close\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// How to write a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// All at once.
    Whole,
    /// `bytes` at a time, `interval` apart.
    Trickle {
        /// Bytes per write.
        bytes: usize,
        /// Pause between writes.
        interval: Duration,
    },
}

/// Writes a response; a trickle stops early when `stop` is raised (shutdown) or the peer goes away.
pub fn write_response(stream: &mut TcpStream, resp: &Response, pace: Pace, stop: &AtomicBool) -> io::Result<()> {
    let bytes = resp.to_bytes();
    match pace {
        Pace::Whole => stream.write_all(&bytes)?,
        Pace::Trickle { bytes: n, interval } => {
            for (i, chunk) in bytes.chunks(n.max(1)).enumerate() {
                if i > 0 && !sleep_unless(interval, stop) {
                    return Err(io::Error::other("shutting down"));
                }
                stream.write_all(chunk)?;
                stream.flush()?;
            }
        }
    }
    stream.flush()
}

/// Sleeps for `d` in short steps; false when `stop` was raised meanwhile.
pub fn sleep_unless(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_bytes_are_exact() {
        let r = Response::json(401, r#"{"error": "invalid api key"}"#);
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 28\r\nConnection: close\r\n\r\n{\"error\": \"invalid api key\"}"
        );
        let t = Response::text(413, "Request Entity Too Large").with_header("X-A", "b");
        let s = String::from_utf8(t.to_bytes()).unwrap();
        assert!(s.starts_with("HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\nX-A: b\r\n"), "{s}");
    }
}
