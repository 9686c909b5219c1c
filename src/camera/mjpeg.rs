//! MJPEG frames as webcams send them: header checks before any allocation, the standard Huffman tables inserted
//! when a frame has none (ITU-T T.81 Annex K, as ffmpeg's `mjpeg2jpeg` does), decoding with the `image` crate
//! (zune-jpeg), and splitting a concatenated MJPEG stream into frames. Pure functions, run on the camera thread.

use super::{FrameError, MAX_FRAME_BYTES, check_dimensions};
use image::RgbImage;
use std::borrow::Cow;
use std::io::Read;

/// What the header of a JPEG frame says, read without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegHeader {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour components (1 grey, 3 YCbCr).
    pub components: u8,
    /// The frame carries at least one DHT (Huffman table) segment.
    pub has_huffman_tables: bool,
    /// Offset of the first SOS (start of scan) marker.
    pub sos_offset: usize,
}

const fn dht_segment() -> [u8; 420] {
    const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
    const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
    const AC_LUMA_VALUES: [u8; 162] = [
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71,
        0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72,
        0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37,
        0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
        0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
        0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
        0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
        0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
    const AC_CHROMA_VALUES: [u8; 162] = [
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22,
        0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1,
        0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36,
        0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
        0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a,
        0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
        0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
        0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
    ];
    let mut out = [0u8; 420];
    out[0] = 0xFF;
    out[1] = 0xC4;
    // Segment length: itself (2) + four tables of (class/id byte + 16 counts + values).
    out[2] = (418u16 >> 8) as u8;
    out[3] = (418u16 & 0xFF) as u8;
    let mut p = 4;
    // (class << 4 | id): DC luma 0x00, AC luma 0x10, DC chroma 0x01, AC chroma 0x11.
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_LUMA_BITS, &DC_VALUES),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
        (0x01, &DC_CHROMA_BITS, &DC_VALUES),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    let mut t = 0;
    while t < 4 {
        let (tc, bits, values) = tables[t];
        out[p] = tc;
        p += 1;
        let mut i = 0;
        while i < 16 {
            out[p] = bits[i];
            p += 1;
            i += 1;
        }
        let mut v = 0;
        while v < values.len() {
            out[p] = values[v];
            p += 1;
            v += 1;
        }
        t += 1;
    }
    out
}

/// The standard DHT segment (marker included) of ITU-T T.81 Annex K.3, inserted into frames that carry none.
pub static STANDARD_DHT: [u8; 420] = dht_segment();

fn be16(buf: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(*buf.get(at)?) << 8 | usize::from(*buf.get(at + 1)?))
}

/// Reads the markers up to the first scan: dimensions (refused when absurd), components, presence of Huffman
/// tables. Allocates nothing.
pub fn read_header(buf: &[u8]) -> Result<JpegHeader, FrameError> {
    if !buf.starts_with(&[0xFF, 0xD8]) {
        return Err(FrameError::NotJpeg);
    }
    let mut pos = 2;
    let mut has_dht = false;
    let mut sof: Option<(u8, u32, u32, u8)> = None;
    loop {
        let (Some(&ff), Some(&marker)) = (buf.get(pos), buf.get(pos + 1)) else {
            return Err(FrameError::Truncated);
        };
        if ff != 0xFF {
            return Err(FrameError::Malformed("expected a marker"));
        }
        match marker {
            // Fill byte before a marker.
            0xFF => pos += 1,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => pos += 2,
            0xD8 => return Err(FrameError::Malformed("nested start of image")),
            0xD9 => return Err(FrameError::Malformed("end of image before any scan")),
            0x00 => return Err(FrameError::Malformed("stuffed byte outside a scan")),
            _ => {
                let len = be16(buf, pos + 2).ok_or(FrameError::Truncated)?;
                if len < 2 {
                    return Err(FrameError::Malformed("segment length below 2"));
                }
                let end = pos + 2 + len;
                if end > buf.len() {
                    return Err(FrameError::Truncated);
                }
                let seg = &buf[pos + 4..end];
                match marker {
                    0xC4 => has_dht = true,
                    0xC0..=0xCF if marker != 0xC8 && marker != 0xCC => {
                        if seg.len() < 6 {
                            return Err(FrameError::Malformed("short frame header"));
                        }
                        let height = (u32::from(seg[1]) << 8) | u32::from(seg[2]);
                        let width = (u32::from(seg[3]) << 8) | u32::from(seg[4]);
                        let components = seg[5];
                        if seg.len() < 6 + 3 * usize::from(components) {
                            return Err(FrameError::Malformed("short frame header"));
                        }
                        if sof.is_some() {
                            return Err(FrameError::Malformed("two frame headers"));
                        }
                        sof = Some((marker, width, height, components));
                    }
                    0xDA => {
                        let Some((kind, width, height, components)) = sof else {
                            return Err(FrameError::Malformed("scan before the frame header"));
                        };
                        check_dimensions(width, height)?;
                        if !matches!(kind, 0xC0..=0xC2) {
                            return Err(FrameError::Unsupported(format!(
                                "JPEG process SOF{} (only baseline, extended and progressive Huffman)",
                                kind - 0xC0
                            )));
                        }
                        if components != 1 && components != 3 {
                            return Err(FrameError::Unsupported(format!("{components} colour components")));
                        }
                        return Ok(JpegHeader {
                            width,
                            height,
                            components,
                            has_huffman_tables: has_dht,
                            sos_offset: pos,
                        });
                    }
                    _ => {}
                }
                pos = end;
            }
        }
    }
}

/// Where the frame ends: just after its end-of-image marker. Webcam drivers may pad a buffer after the marker (some
/// report the whole buffer as used); a frame cut short by a lost USB packet has no marker and is refused.
fn frame_end(buf: &[u8], sos_offset: usize) -> Result<usize, FrameError> {
    // In entropy-coded data every 0xFF is followed by 0x00 or a restart marker, so 0xFF 0xD9 after the first scan
    // is the end of the image. Search from the back: padding is short, the image data long.
    buf[sos_offset..]
        .windows(2)
        .rposition(|w| w == [0xFF, 0xD9])
        .map(|i| sos_offset + i + 2)
        .ok_or(FrameError::Truncated)
}

/// The frame with the standard Huffman tables inserted before its first scan when it carries none; borrowed
/// unchanged otherwise. Trailing padding after the end-of-image marker is cut off.
pub fn with_huffman_tables(buf: &[u8]) -> Result<Cow<'_, [u8]>, FrameError> {
    if buf.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(buf.len()));
    }
    let header = read_header(buf)?;
    let end = frame_end(buf, header.sos_offset)?;
    if header.has_huffman_tables {
        return Ok(Cow::Borrowed(&buf[..end]));
    }
    let mut out = Vec::with_capacity(end + STANDARD_DHT.len());
    out.extend_from_slice(&buf[..header.sos_offset]);
    out.extend_from_slice(&STANDARD_DHT);
    out.extend_from_slice(&buf[header.sos_offset..end]);
    Ok(Cow::Owned(out))
}

/// Decodes one MJPEG frame (or any baseline/progressive JPEG) to RGB. Dimensions are checked from the header
/// before the decoder allocates anything. Calls zune-jpeg directly (the decoder the `image` crate wraps) to avoid
/// copying the input and parsing the headers twice.
pub fn decode_mjpeg(buf: &[u8]) -> Result<RgbImage, FrameError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let data = with_huffman_tables(buf)?;
    let header = read_header(&data)?;
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(super::MAX_SIDE as usize)
        .set_max_height(super::MAX_SIDE as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&data[..]), options);
    decoder.decode_headers().map_err(|e| FrameError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions().ok_or(FrameError::Malformed("no dimensions"))?;
    if (w as u32, h as u32) != (header.width, header.height) {
        return Err(FrameError::Decode("decoder and header disagree on the size".into()));
    }
    let size = decoder.output_buffer_size().ok_or(FrameError::Malformed("no output size"))?;
    if size != w * h * 3 {
        return Err(FrameError::Unsupported("decoder output is not RGB".into()));
    }
    let mut out = vec![0u8; size];
    decoder.decode_into(&mut out).map_err(|e| FrameError::Decode(e.to_string()))?;
    RgbImage::from_raw(header.width, header.height, out).ok_or(FrameError::Malformed("output size"))
}

/// The frame without its DHT segments: what many UVC webcams send. For tests and benchmarks of the insertion.
pub fn remove_huffman_tables(buf: &[u8]) -> Result<Vec<u8>, FrameError> {
    let header = read_header(buf)?;
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(&buf[..2]);
    let mut pos = 2;
    while pos < header.sos_offset {
        if buf[pos + 1] == 0xFF {
            pos += 1;
            continue;
        }
        if matches!(buf[pos + 1], 0x01 | 0xD0..=0xD7) {
            out.extend_from_slice(&buf[pos..pos + 2]);
            pos += 2;
            continue;
        }
        // read_header checked every segment up to the scan.
        let len = be16(buf, pos + 2).ok_or(FrameError::Truncated)?;
        if buf[pos + 1] != 0xC4 {
            out.extend_from_slice(&buf[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&buf[header.sos_offset..]);
    Ok(out)
}

/// Length of the first complete JPEG frame at the start of `buf` (which starts with SOI), walking the marker
/// segments and the entropy-coded data, so a thumbnail inside an APP segment does not end the frame early.
/// `Ok(None)`: more data is needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if !buf.starts_with(&[0xFF, 0xD8]) {
        return Err(FrameError::NotJpeg);
    }
    let mut pos = 2;
    loop {
        let (Some(&ff), Some(&marker)) = (buf.get(pos), buf.get(pos + 1)) else { return Ok(None) };
        if ff != 0xFF {
            return Err(FrameError::Malformed("expected a marker"));
        }
        match marker {
            0xFF => pos += 1,
            0x01 | 0xD0..=0xD7 => pos += 2,
            0xD9 => return Ok(Some(pos + 2)),
            0x00 | 0xD8 => return Err(FrameError::Malformed("unexpected marker")),
            _ => {
                let Some(len) = be16(buf, pos + 2) else { return Ok(None) };
                if len < 2 {
                    return Err(FrameError::Malformed("segment length below 2"));
                }
                pos += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data up to the next marker that is neither stuffing nor a restart.
                    loop {
                        let Some(i) = buf.get(pos..).and_then(|s| s.iter().position(|&b| b == 0xFF)) else {
                            return Ok(None);
                        };
                        pos += i;
                        match buf.get(pos + 1) {
                            None => return Ok(None),
                            Some(0x00 | 0xD0..=0xD7) => pos += 2,
                            Some(0xFF) => pos += 1,
                            Some(_) => break,
                        }
                    }
                }
            }
        }
        if pos > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(pos));
        }
    }
}

/// Splits a concatenated MJPEG stream (`ffmpeg -c:v copy out.mjpeg`, `cat *.jpg`) into frames. Bytes between
/// frames are skipped; a frame that does not end within [`MAX_FRAME_BYTES`] or is malformed is skipped and counted.
pub struct MjpegSplitter<R> {
    reader: R,
    buf: Vec<u8>,
    eof: bool,
    skipped: u64,
}

const READ_CHUNK: usize = 256 * 1024;

impl<R: Read> MjpegSplitter<R> {
    /// A splitter over `reader`.
    pub fn new(reader: R) -> Self {
        MjpegSplitter { reader, buf: Vec::new(), eof: false, skipped: 0 }
    }

    /// Frames skipped so far (malformed or too large).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The wrapped reader (to rewind it), and forgets any buffered bytes.
    pub fn reset(&mut self) -> &mut R {
        self.buf.clear();
        self.eof = false;
        &mut self.reader
    }

    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// The next complete frame's bytes, or `None` at the end of the stream.
    pub fn next_frame(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            // Resynchronise on a start of image followed by a marker.
            match self.buf.windows(3).position(|w| w[0] == 0xFF && w[1] == 0xD8 && w[2] == 0xFF) {
                Some(0) => {}
                Some(i) => {
                    self.buf.drain(..i);
                }
                None => {
                    // Keep a possible partial marker at the end.
                    let keep = self.buf.len().min(2);
                    self.buf.drain(..self.buf.len() - keep);
                    if !self.fill()? {
                        return Ok(None);
                    }
                    continue;
                }
            }
            match frame_len(&self.buf) {
                Ok(Some(n)) => return Ok(Some(self.buf.drain(..n).collect())),
                Ok(None) if self.buf.len() <= MAX_FRAME_BYTES => {
                    if !self.fill()? {
                        // The stream ends inside a frame.
                        if !self.buf.is_empty() {
                            self.skipped += 1;
                            self.buf.clear();
                        }
                        return Ok(None);
                    }
                }
                Ok(None) | Err(_) => {
                    self.skipped += 1;
                    self.buf.drain(..2);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn jpeg(w: u32, h: u32, quality: u8) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8]));
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
        enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_2);
        enc.encode(img.as_raw(), w as u16, h as u16, jpeg_encoder::ColorType::Rgb).unwrap();
        out
    }

    #[test]
    fn standard_tables_have_the_annex_k_sizes() {
        assert_eq!(STANDARD_DHT.len(), 420);
        assert_eq!(&STANDARD_DHT[..4], &[0xFF, 0xC4, 0x01, 0xA2]);
        // Each table's value count equals the sum of its 16 code-length counts.
        let mut p = 4;
        for (class, count) in [(0x00, 12), (0x10, 162), (0x01, 12), (0x11, 162)] {
            assert_eq!(STANDARD_DHT[p], class);
            let sum: usize = STANDARD_DHT[p + 1..p + 17].iter().map(|&b| b as usize).sum();
            assert_eq!(sum, count);
            p += 17 + count;
        }
        assert_eq!(p, 420);
    }

    #[test]
    fn header_reads_dimensions_and_tables() {
        let j = jpeg(64, 48, 80);
        let h = read_header(&j).unwrap();
        assert_eq!((h.width, h.height, h.components, h.has_huffman_tables), (64, 48, 3, true));
        let stripped = remove_huffman_tables(&j).unwrap();
        assert!(!read_header(&stripped).unwrap().has_huffman_tables);
        // jpeg-encoder writes the four standard tables (416 bytes) in four DHT segments of 4 header bytes each.
        assert_eq!(stripped.len(), j.len() - 416 - 4 * 4);
    }

    #[test]
    fn absurd_and_broken_headers_are_refused_before_decoding() {
        let j = jpeg(32, 32, 80);
        let sof = j.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let with_size = |w: u16, h: u16| {
            let mut b = j.clone();
            b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
            b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
            b
        };
        type Check = fn(&FrameError) -> bool;
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("65535 wide", with_size(65535, 16), |e| matches!(e, FrameError::Dimensions { .. })),
            ("40+ MP", with_size(8000, 8000), |e| matches!(e, FrameError::Dimensions { .. })),
            ("zero height", with_size(16, 0), |e| matches!(e, FrameError::Dimensions { .. })),
            ("not jpeg", b"hello".to_vec(), |e| *e == FrameError::NotJpeg),
            ("only SOI", vec![0xFF, 0xD8], |e| *e == FrameError::Truncated),
            ("cut in a header", j[..sof + 4].to_vec(), |e| *e == FrameError::Truncated),
            ("cut in the scan", j[..j.len() - 40].to_vec(), |e| *e == FrameError::Truncated),
            ("garbage after SOI", vec![0xFF, 0xD8, 0x12, 0x34, 0, 0], |e| matches!(e, FrameError::Malformed(_))),
        ];
        for (name, bytes, want) in cases {
            let err = decode_mjpeg(&bytes).unwrap_err();
            assert!(want(&err), "{name}: {err:?}");
        }
        assert!(decode_mjpeg(&vec![0u8; MAX_FRAME_BYTES + 1]).is_err());
    }

    #[test]
    fn trailing_padding_after_the_end_marker_is_accepted() {
        let mut j = jpeg(32, 16, 80);
        let plain = decode_mjpeg(&j).unwrap();
        // Some drivers report the whole buffer as used: a large tail of padding.
        j.extend_from_slice(&vec![0u8; 300_000]);
        assert_eq!(decode_mjpeg(&j).unwrap(), plain);
    }

    #[test]
    fn splitter_finds_frames_in_a_concatenated_stream() {
        let a = jpeg(16, 16, 80);
        let b = remove_huffman_tables(&jpeg(24, 8, 60)).unwrap();
        let mut stream = b"junk".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&[0, 0, 0]);
        stream.extend_from_slice(&b);
        stream.extend_from_slice(&a[..a.len() / 2]); // cut short at the end
        let mut s = MjpegSplitter::new(std::io::Cursor::new(stream));
        assert_eq!(s.next_frame().unwrap().unwrap(), a);
        assert_eq!(s.next_frame().unwrap().unwrap(), b);
        assert_eq!(s.next_frame().unwrap(), None);
        assert_eq!(s.skipped(), 1);
    }

    #[test]
    fn frame_len_skips_an_embedded_thumbnail() {
        let thumb = jpeg(8, 8, 50);
        let main = jpeg(16, 16, 80);
        // APP1 segment holding a whole JPEG (as EXIF thumbnails do).
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE1];
        f.extend_from_slice(&((thumb.len() + 2) as u16).to_be_bytes());
        f.extend_from_slice(&thumb);
        f.extend_from_slice(&main[2..]);
        assert_eq!(frame_len(&f).unwrap(), Some(f.len()));
        assert_eq!(frame_len(&f[..f.len() - 1]).unwrap(), None);
    }
}
