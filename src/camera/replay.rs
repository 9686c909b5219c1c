//! The replay source: a folder of JPEG/PNG frames (sorted by name), a single image, a concatenated MJPEG file, or
//! images held in memory, served at a fixed frame rate and looping. For tests, demos and support
//! (`camera.source = "replay:PATH"`). Runs on the camera thread; files are read one frame at a time, each bounded.

use super::mjpeg::{MjpegSplitter, decode_mjpeg};
use super::{CameraError, Frame, FrameSource, MAX_FRAME_BYTES, decode_image_bytes};
use image::RgbImage;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most files taken from a replay folder.
pub const MAX_REPLAY_FILES: usize = 100_000;

enum Kind {
    /// Decoded images served in turn (a single image is a list of one).
    Images { frames: Vec<RgbImage>, pos: usize },
    /// Files decoded one at a time.
    Folder { files: Vec<PathBuf>, pos: usize },
    /// A concatenated MJPEG file.
    Stream { splitter: Box<MjpegSplitter<BufReader<File>>>, good_in_pass: u64 },
}

/// Frames from files or memory at a fixed rate; see the module header.
pub struct ReplaySource {
    kind: Kind,
    interval: Duration,
    next_due: Option<Instant>,
    seq: u64,
    dropped: u64,
    /// Consecutive frames that failed to decode (a folder where nothing decodes is an error, not a busy loop).
    failures_in_a_row: u64,
    looping: bool,
    description: String,
    path: PathBuf,
}

impl ReplaySource {
    /// Opens `path`: a directory of `.jpg`/`.jpeg`/`.png` files (sorted by name), a `.mjpeg`/`.mjpg` file of
    /// concatenated JPEG frames, or a single JPEG/PNG image. Served at `fps`, looping.
    pub fn open(path: &Path, fps: u32) -> Result<Self, CameraError> {
        let err = |reason: String| CameraError::Replay { path: path.to_owned(), reason };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let kind = if meta.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| err(e.to_string()))? {
                let p = entry.map_err(|e| err(e.to_string()))?.path();
                let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                if matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) && p.is_file() {
                    if files.len() == MAX_REPLAY_FILES {
                        return Err(err(format!("holds more than {MAX_REPLAY_FILES} frames")));
                    }
                    files.push(p);
                }
            }
            if files.is_empty() {
                return Err(err("holds no .jpg, .jpeg or .png file".into()));
            }
            files.sort();
            Kind::Folder { files, pos: 0 }
        } else {
            let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if matches!(ext.as_deref(), Some("mjpeg" | "mjpg")) {
                let f = File::open(path).map_err(|e| err(e.to_string()))?;
                Kind::Stream { splitter: Box::new(MjpegSplitter::new(BufReader::new(f))), good_in_pass: 0 }
            } else {
                let bytes = read_bounded(path).map_err(err)?;
                let img = decode_image_bytes(&bytes).map_err(|e| err(e.to_string()))?;
                Kind::Images { frames: vec![img], pos: 0 }
            }
        };
        let interval = interval(fps).map_err(err)?;
        Ok(ReplaySource {
            kind,
            interval,
            next_due: None,
            seq: 0,
            dropped: 0,
            failures_in_a_row: 0,
            looping: true,
            description: format!("replay {}", path.display()),
            path: path.to_owned(),
        })
    }

    /// Serves `images` in order at `fps`, looping. For tests and scripted sequences (a face that comes into focus).
    pub fn from_images(images: Vec<RgbImage>, fps: u32) -> Result<Self, CameraError> {
        let path = PathBuf::from("<memory>");
        let err = |reason: String| CameraError::Replay { path: path.clone(), reason };
        if images.is_empty() {
            return Err(err("no images".into()));
        }
        let interval = interval(fps).map_err(err)?;
        Ok(ReplaySource {
            description: format!("replay of {} images in memory", images.len()),
            kind: Kind::Images { frames: images, pos: 0 },
            interval,
            next_due: None,
            seq: 0,
            dropped: 0,
            failures_in_a_row: 0,
            looping: true,
            path,
        })
    }

    /// Whether to start again after the last frame (the default); without, `next_frame` then returns
    /// [`CameraError::EndOfReplay`].
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    fn err(&self, reason: String) -> CameraError {
        CameraError::Replay { path: self.path.clone(), reason }
    }

    /// The next image in order, without pacing. `Ok(None)`: this one was dropped, try again.
    fn produce(&mut self) -> Result<Option<RgbImage>, CameraError> {
        let looping = self.looping;
        match &mut self.kind {
            Kind::Images { frames, pos } => {
                if *pos == frames.len() {
                    if !looping {
                        return Err(CameraError::EndOfReplay);
                    }
                    *pos = 0;
                }
                *pos += 1;
                Ok(Some(frames[*pos - 1].clone()))
            }
            Kind::Folder { files, pos } => {
                if *pos == files.len() {
                    if !looping {
                        return Err(CameraError::EndOfReplay);
                    }
                    *pos = 0;
                }
                let file = &files[*pos];
                *pos += 1;
                let total = files.len() as u64;
                match read_bounded(file).and_then(|b| decode_image_bytes(&b).map_err(|e| e.to_string())) {
                    Ok(img) => Ok(Some(img)),
                    Err(e) => {
                        log::warn!("replay: dropped {}: {e}", file.display());
                        self.dropped += 1;
                        self.failures_in_a_row += 1;
                        if self.failures_in_a_row >= total {
                            return Err(self.err("no frame in the folder decodes".into()));
                        }
                        Ok(None)
                    }
                }
            }
            Kind::Stream { splitter, good_in_pass } => {
                let before = splitter.skipped();
                let next = splitter
                    .next_frame()
                    .map_err(|e| CameraError::Replay { path: self.path.clone(), reason: e.to_string() })?;
                self.dropped += splitter.skipped() - before;
                match next {
                    Some(bytes) => match decode_mjpeg(&bytes) {
                        Ok(img) => {
                            *good_in_pass += 1;
                            Ok(Some(img))
                        }
                        Err(e) => {
                            log::debug!("replay: dropped a frame: {e}");
                            self.dropped += 1;
                            Ok(None)
                        }
                    },
                    None => {
                        if *good_in_pass == 0 {
                            return Err(self.err("no decodable JPEG frame in the file".into()));
                        }
                        if !looping {
                            return Err(CameraError::EndOfReplay);
                        }
                        *good_in_pass = 0;
                        splitter
                            .reset()
                            .rewind()
                            .map_err(|e| CameraError::Replay { path: self.path.clone(), reason: e.to_string() })?;
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// A scripted approach for tests of auto-capture: `frames` images of `portrait` drifting in and coming into focus
/// on a `width` x `height` background, reaching `final_progress` (1.0: the portrait's `face` point, in fractions of
/// its size, centred and sharp, then held for the last third of the frames; below 1.0 it never gets there). Feed
/// it to [`ReplaySource::from_images`]. For the bundled portrait and `tests/fixtures/astronaut.png`, `face` is
/// [`super::demo::PORTRAIT_FACE_CENTRE`].
pub fn approach_sequence(
    portrait: &RgbImage,
    face: (f64, f64),
    width: u32,
    height: u32,
    frames: usize,
    final_progress: f64,
) -> Vec<RgbImage> {
    // Ten distinct looks while moving (each held for a few frames, as a slow camera shows them), then the last.
    const LOOKS: usize = 10;
    let moving = (frames * 2 / 3).max(1);
    let mut out: Vec<RgbImage> = Vec::with_capacity(frames);
    let mut last_look = usize::MAX;
    for i in 0..frames {
        let look = i.min(moving) * LOOKS / moving;
        match out.last() {
            Some(prev) if look == last_look => out.push(prev.clone()),
            _ => {
                let p = final_progress * look as f64 / LOOKS as f64;
                out.push(super::demo::approach_frame(portrait, face, width, height, p));
            }
        }
        last_look = look;
    }
    out
}

fn interval(fps: u32) -> Result<Duration, String> {
    if !(1..=1000).contains(&fps) {
        return Err(format!("frame rate {fps} is outside 1..=1000"));
    }
    Ok(Duration::from_secs(1) / fps)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(MAX_FRAME_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(format!("larger than {MAX_FRAME_BYTES} bytes"));
    }
    Ok(bytes)
}

impl FrameSource for ReplaySource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        let deadline = Instant::now() + timeout;
        // Pace: wait for this frame's slot, at most until the caller's deadline.
        if let Some(due) = self.next_due {
            let now = Instant::now();
            if due > now {
                if due > deadline {
                    std::thread::sleep(deadline.saturating_duration_since(now));
                    return Err(CameraError::Timeout(timeout));
                }
                std::thread::sleep(due - now);
            }
        }
        loop {
            if let Some(image) = self.produce()? {
                self.failures_in_a_row = 0;
                let now = Instant::now();
                // The next slot follows this one; after a stall, restart the pace from now instead of bursting.
                let base = match self.next_due {
                    Some(due) if due + self.interval >= now => due,
                    _ => now,
                };
                self.next_due = Some(base + self.interval);
                self.seq += 1;
                return Ok(Frame { image, seq: self.seq, captured_at: now });
            }
            if Instant::now() >= deadline {
                return Err(CameraError::Timeout(timeout));
            }
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}
