//! Streamed JSON request bodies: an [`ImageBody`] is turned into base64 while ureq pulls the request body, so the
//! memory a request needs does not grow with the image size. Runs on the thread that makes the call (the uploader
//! thread or the CLI's main thread), inside `ureq`'s send loop.
//!
//! A [`JsonBody`] is a list of segments: literal JSON text (keys, commas and every non-image value, serialised with
//! `serde_json` so strings are escaped correctly) and image values, whose base64 is produced on the fly in 3-byte
//! aligned chunks, so padding appears only at the very end of each image. Its exact length is known before the first
//! byte is sent (`prefix + ceil(n / 3) * 4 + ...`), so the request carries a `Content-Length`.
//!
//! The body also records how far it got: [`JsonBody::is_complete`] says whether ureq has taken every byte, which is
//! how the client tells an ambiguous failure (the body was handed over completely, then no answer came) from one
//! that happened before the server could have acted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use std::fmt;
use std::io::{self, Read};

/// The vendor's limit on base64 text in one request: 30,000,000 bytes, summed over the document sides, per image
/// for the face (the stricter reading of "30 MB", contract section 7). The client refuses to send more.
pub const MAX_BASE64_LEN: u64 = 30_000_000;

/// Raw bytes read from an image source per encoding step: a multiple of 3, so only the last chunk pads.
const RAW_CHUNK: usize = 48 * 1024;

/// An image (or clip) to upload: raw JPEG bytes, base64-encoded on the fly while the request is sent.
pub struct ImageBody<'a> {
    reader: Box<dyn Read + 'a>,
    len: u64,
}

impl<'a> ImageBody<'a> {
    /// An image already in memory.
    pub fn from_bytes(bytes: &'a [u8]) -> ImageBody<'a> {
        ImageBody { reader: Box::new(bytes), len: bytes.len() as u64 }
    }

    /// Any reader with its exact length in bytes (e.g. a decrypting reader over an SQLite blob). A reader that ends
    /// early or runs past `len` fails the call with [`ApiError::ImageUnreadable`](super::ApiError::ImageUnreadable).
    ///
    /// The reader need not be `Send` (a `rusqlite::blob::Blob` is not): it is read on the calling thread only. A
    /// `Box<dyn Read + Send>` converts to this type as is.
    pub fn from_reader(reader: Box<dyn Read + 'a>, len: u64) -> ImageBody<'a> {
        ImageBody { reader, len }
    }

    /// Length of the image in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length of the base64 text this image becomes: ceil(len / 3) * 4.
    pub fn base64_len(&self) -> u64 {
        base64_len(self.len)
    }
}

impl fmt::Debug for ImageBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes: they are biometric data.
        f.debug_struct("ImageBody").field("len", &self.len).finish_non_exhaustive()
    }
}

/// ceil(n / 3) * 4, the length of padded standard base64 for `n` bytes.
pub fn base64_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

/// One piece of a [`JsonBody`].
enum Segment<'a> {
    /// Literal JSON text.
    Text(Vec<u8>),
    /// An image whose base64 is produced while sending.
    Image(Base64Source<'a>),
}

/// Encodes one image source to base64 in aligned chunks, checking that it yields exactly its declared length.
struct Base64Source<'a> {
    body: ImageBody<'a>,
    /// Bytes taken from the source so far.
    consumed: u64,
    /// Raw bytes waiting to be encoded (allocated when the segment starts).
    raw: Vec<u8>,
    /// Encoded bytes not yet handed out, and how many of them were.
    encoded: Vec<u8>,
    encoded_pos: usize,
    /// Whether the end of the source has been checked.
    finished: bool,
}

impl Base64Source<'_> {
    fn new(body: ImageBody<'_>) -> Base64Source<'_> {
        Base64Source { body, consumed: 0, raw: Vec::new(), encoded: Vec::new(), encoded_pos: 0, finished: false }
    }

    /// Refills `encoded` with the next chunk. Returns `false` when the source is exhausted.
    fn refill(&mut self) -> io::Result<bool> {
        self.encoded.clear();
        self.encoded_pos = 0;
        let remaining = self.body.len - self.consumed;
        if remaining == 0 {
            if !self.finished {
                self.finished = true;
                self.check_source_ended()?;
            }
            return Ok(false);
        }
        // `min` with RAW_CHUNK keeps this within usize.
        let want = remaining.min(RAW_CHUNK as u64) as usize;
        self.raw.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match self.body.reader.read(&mut self.raw[filled..want]) {
                Ok(0) => {
                    return Err(source_error(format!(
                        "the image source ended after {} of {} bytes",
                        self.consumed + filled as u64,
                        self.body.len
                    )));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(source_error(format!("the image source failed: {}", e.kind()))),
            }
        }
        self.consumed += want as u64;
        // A full chunk is a multiple of 3 bytes; only the last one can be shorter, and only it pads.
        self.encoded.resize(base64_len(want as u64) as usize, 0);
        let written = STANDARD
            .encode_slice(&self.raw[..want], &mut self.encoded)
            .map_err(|_| source_error("base64 output buffer too small".to_string()))?;
        self.encoded.truncate(written);
        Ok(true)
    }

    /// After the declared length, the source must be at its end: a longer source means a wrong length.
    fn check_source_ended(&mut self) -> io::Result<()> {
        let mut probe = [0u8; 1];
        loop {
            match self.body.reader.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(source_error(format!(
                        "the image source holds more than its declared {} bytes",
                        self.body.len
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(source_error(format!("the image source failed: {}", e.kind()))),
            }
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.encoded_pos == self.encoded.len() && !self.refill()? {
            return Ok(0);
        }
        let n = out.len().min(self.encoded.len() - self.encoded_pos);
        out[..n].copy_from_slice(&self.encoded[self.encoded_pos..self.encoded_pos + n]);
        self.encoded_pos += n;
        Ok(n)
    }
}

/// Marks an I/O error as coming from the image source (not the network), so the client can tell them apart.
#[derive(Debug)]
pub(crate) struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

fn source_error(msg: String) -> io::Error {
    io::Error::other(SourceError(msg))
}

/// A JSON object streamed as a `Read`, with its exact length known up front.
pub(crate) struct JsonBody<'a> {
    segments: Vec<Segment<'a>>,
    /// Index of the segment being read, and the offset inside a text segment.
    current: usize,
    text_pos: usize,
    total: u64,
    emitted: u64,
    /// Set when the image source failed (not the network).
    source_failure: Option<String>,
}

/// Builds a [`JsonBody`] member by member.
pub(crate) struct JsonBodyBuilder<'a> {
    segments: Vec<Segment<'a>>,
    text: Vec<u8>,
    members: usize,
    base64_total: u64,
}

impl<'a> JsonBodyBuilder<'a> {
    pub(crate) fn new() -> JsonBodyBuilder<'a> {
        JsonBodyBuilder { segments: Vec::new(), text: vec![b'{'], members: 0, base64_total: 0 }
    }

    fn key(&mut self, name: &str) {
        if self.members > 0 {
            self.text.push(b',');
        }
        self.members += 1;
        // Serialising a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.text, name);
        self.text.push(b':');
    }

    /// Adds a member whose value is serialised with serde_json.
    pub(crate) fn field(mut self, name: &str, value: &impl Serialize) -> Result<JsonBodyBuilder<'a>, String> {
        self.key(name);
        serde_json::to_writer(&mut self.text, value).map_err(|e| format!("cannot serialise `{name}`: {e}"))?;
        Ok(self)
    }

    /// Adds a member whose value is the base64 of `image`, after `data_uri` (e.g. `data:image/jpeg;base64,`).
    pub(crate) fn image(mut self, name: &str, data_uri: Option<&str>, image: ImageBody<'a>) -> JsonBodyBuilder<'a> {
        self.key(name);
        self.text.push(b'"');
        if let Some(prefix) = data_uri {
            // The prefixes are fixed ASCII without quotes or backslashes: no escaping needed.
            self.text.extend_from_slice(prefix.as_bytes());
            self.base64_total += prefix.len() as u64;
        }
        self.base64_total += image.base64_len();
        self.segments.push(Segment::Text(std::mem::take(&mut self.text)));
        self.segments.push(Segment::Image(Base64Source::new(image)));
        self.text.push(b'"');
        self
    }

    /// The length of all image values, data-URI prefixes included (what the 30,000,000-byte limit counts).
    pub(crate) fn base64_total(&self) -> u64 {
        self.base64_total
    }

    pub(crate) fn build(mut self) -> JsonBody<'a> {
        self.text.push(b'}');
        self.segments.push(Segment::Text(self.text));
        let total = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.len() as u64,
                Segment::Image(src) => src.body.base64_len(),
            })
            .sum();
        JsonBody { segments: self.segments, current: 0, text_pos: 0, total, emitted: 0, source_failure: None }
    }
}

impl JsonBody<'_> {
    /// A body made of one serialisable value (E4, E5, E9).
    pub(crate) fn from_value(value: &impl Serialize) -> Result<JsonBody<'static>, String> {
        let text = serde_json::to_vec(value).map_err(|e| format!("cannot serialise the request: {e}"))?;
        let total = text.len() as u64;
        Ok(JsonBody {
            segments: vec![Segment::Text(text)],
            current: 0,
            text_pos: 0,
            total,
            emitted: 0,
            source_failure: None,
        })
    }

    /// The exact number of bytes this body produces (the `Content-Length`).
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// Whether every byte has been handed out (ureq took the whole body).
    pub(crate) fn is_complete(&self) -> bool {
        self.emitted == self.total
    }

    /// The image source's failure, if the body stopped because of it.
    pub(crate) fn source_failure(&self) -> Option<&str> {
        self.source_failure.as_deref()
    }

    fn read_inner(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current < self.segments.len() {
            let n = match &mut self.segments[self.current] {
                Segment::Text(t) => {
                    let n = out.len().min(t.len() - self.text_pos);
                    out[..n].copy_from_slice(&t[self.text_pos..self.text_pos + n]);
                    self.text_pos += n;
                    n
                }
                Segment::Image(src) => src.read(out)?,
            };
            if n > 0 {
                return Ok(n);
            }
            // This segment is exhausted: free its buffers and move on.
            if let Segment::Image(src) = &mut self.segments[self.current] {
                src.raw = Vec::new();
                src.encoded = Vec::new();
            }
            self.current += 1;
            self.text_pos = 0;
        }
        Ok(0)
    }
}

impl Read for JsonBody<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.read_inner(out) {
            Ok(n) => {
                self.emitted += n as u64;
                Ok(n)
            }
            Err(e) => {
                let msg = match e.get_ref().and_then(|inner| inner.downcast_ref::<SourceError>()) {
                    Some(s) => s.0.clone(),
                    None => format!("the image source failed: {}", e.kind()),
                };
                self.source_failure = Some(msg);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
    }

    /// Reads the body in small, uneven pieces, the way a socket writer might.
    fn drain(body: &mut JsonBody<'_>, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; step];
        loop {
            let n = body.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn streamed_body_equals_serde_json_for_many_sizes() {
        let sizes = [0usize, 1, 2, 3, 4, 5, 47, RAW_CHUNK - 1, RAW_CHUNK, RAW_CHUNK + 1, RAW_CHUNK * 2 + 2, 3 << 20];
        for &n in &sizes {
            for prefix in [None, Some("data:image/jpeg;base64,")] {
                let img = pattern(n);
                let back = pattern(n / 2 + 1);
                let mut body = JsonBodyBuilder::new()
                    .field("documentIdentificationId", &"id \"quoted\" \\ é")
                    .unwrap()
                    .image("frontImage_base64", prefix, ImageBody::from_bytes(&img))
                    .image("back\"Image", prefix, ImageBody::from_bytes(&back))
                    .build();
                let declared = body.len();
                let bytes = drain(&mut body, 7001);
                assert_eq!(bytes.len() as u64, declared, "size {n}");
                assert!(body.is_complete());
                let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let p = prefix.unwrap_or("");
                let want = serde_json::json!({
                    "documentIdentificationId": "id \"quoted\" \\ é",
                    "frontImage_base64": format!("{p}{}", STANDARD.encode(&img)),
                    "back\"Image": format!("{p}{}", STANDARD.encode(&back)),
                });
                assert_eq!(got, want, "size {n}");
            }
        }
    }

    #[test]
    fn declared_length_is_prefix_plus_base64_plus_suffix() {
        for n in 0..10u64 {
            let img = pattern(n as usize);
            let body = JsonBodyBuilder::new().image("f", None, ImageBody::from_bytes(&img)).build();
            // {"f":"  +  base64  +  "}
            assert_eq!(body.len(), 6 + base64_len(n) + 2);
        }
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(4), 8);
    }

    #[test]
    fn base64_total_counts_prefixes_and_sums_images() {
        let a = pattern(10);
        let b = pattern(4);
        let builder = JsonBodyBuilder::new()
            .image("a", Some("data:image/jpeg;base64,"), ImageBody::from_bytes(&a))
            .image("b", Some("data:image/jpeg;base64,"), ImageBody::from_bytes(&b));
        assert_eq!(builder.base64_total(), 2 * 23 + 16 + 8);
    }

    /// A reader that yields one byte per call, to exercise short reads from the source.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() || out.is_empty() {
                return Ok(0);
            }
            out[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn short_reads_from_the_source_still_align() {
        let img = pattern(RAW_CHUNK + 5);
        let mut body = JsonBodyBuilder::new()
            .image("x", None, ImageBody::from_reader(Box::new(Dribble(img.clone(), 0)), img.len() as u64))
            .build();
        let bytes = drain(&mut body, 65536);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["x"], STANDARD.encode(&img));
    }

    #[test]
    fn a_source_shorter_or_longer_than_declared_fails_without_emitting_a_short_body() {
        let img = pattern(100);
        for (declared, what) in [(101u64, "ended after 100 of 101"), (99, "more than its declared 99")] {
            let mut body =
                JsonBodyBuilder::new().image("x", None, ImageBody::from_reader(Box::new(&img[..]), declared)).build();
            let mut buf = vec![0u8; 1 << 16];
            let mut err = None;
            for _ in 0..10 {
                match body.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            assert!(err.is_some(), "declared {declared}: no error");
            assert!(!body.is_complete());
            let msg = body.source_failure().unwrap();
            assert!(msg.contains(what), "{msg}");
        }
    }

    #[test]
    fn a_failing_source_is_reported_as_a_source_failure() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "tag mismatch"))
            }
        }
        let mut body = JsonBodyBuilder::new().image("x", None, ImageBody::from_reader(Box::new(Broken), 10)).build();
        let mut buf = [0u8; 64];
        // The first read hands out the text before the image.
        let mut failed = false;
        for _ in 0..4 {
            if body.read(&mut buf).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        assert!(body.source_failure().unwrap().contains("failed"));
    }

    #[test]
    fn value_bodies_are_compact_json() {
        let mut body = JsonBody::from_value(&serde_json::json!({"id": "a\"b"})).unwrap();
        let bytes = drain(&mut body, 3);
        assert_eq!(bytes, br#"{"id":"a\"b"}"#);
        assert_eq!(body.len(), bytes.len() as u64);
    }

    #[test]
    fn readers_need_not_be_send() {
        // Like a blob reader borrowing a connection: not Send.
        struct Local(std::rc::Rc<Vec<u8>>, usize);
        impl Read for Local {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(self.0.len() - self.1);
                out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let data = pattern(10);
        let mut body = JsonBodyBuilder::new()
            .image("x", None, ImageBody::from_reader(Box::new(Local(std::rc::Rc::new(data.clone()), 0)), 10))
            .build();
        let v: serde_json::Value = serde_json::from_slice(&drain(&mut body, 5)).unwrap();
        assert_eq!(v["x"], STANDARD.encode(&data));
        // And a Send reader boxed as Send still fits.
        let boxed: Box<dyn Read + Send> = Box::new(io::empty());
        assert_eq!(ImageBody::from_reader(boxed, 0).base64_len(), 0);
    }

    #[test]
    fn debug_never_shows_image_bytes() {
        let img = b"\xff\xd8secretface";
        let s = format!("{:?}", ImageBody::from_bytes(img));
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("len"));
    }
}
