//! The replay source: a folder, a single image, a concatenated MJPEG file and images in memory; looping, pacing,
//! and corrupt frames dropped and counted.

use ekyc_kiosk::camera::mjpeg::remove_huffman_tables;
use ekyc_kiosk::camera::{CameraError, FrameSource, ReplaySource};
use image::{Rgb, RgbImage};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(2);

fn fixture(name: &str) -> RgbImage {
    image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap().into_rgb8()
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 85);
    enc.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// Small distinct frames: the fixtures, resized, so each can be recognised by its size.
fn frames() -> Vec<RgbImage> {
    ["astronaut.png", "chelsea.png", "camera.png"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            image::imageops::resize(&fixture(n), 64 + 16 * i as u32, 48, image::imageops::FilterType::Triangle)
        })
        .collect()
}

fn widths(src: &mut ReplaySource, n: usize) -> Vec<u32> {
    (0..n).map(|_| src.next_frame(WAIT).unwrap().image.width()).collect()
}

#[test]
fn a_folder_replays_in_name_order_loops_and_skips_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = frames();
    std::fs::write(dir.path().join("c.png"), png(&f[2])).unwrap();
    std::fs::write(dir.path().join("a.jpg"), jpeg(&f[0])).unwrap();
    std::fs::write(dir.path().join("b.JPEG"), remove_huffman_tables(&jpeg(&f[1])).unwrap()).unwrap();
    let mut truncated = jpeg(&f[0]);
    truncated.truncate(truncated.len() / 2);
    std::fs::write(dir.path().join("b1-truncated.jpg"), truncated).unwrap();
    std::fs::write(dir.path().join("b2-garbage.png"), b"not a png at all").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();

    let mut src = ReplaySource::open(dir.path(), 500).unwrap();
    assert!(src.describe().contains("replay"));
    assert_eq!(widths(&mut src, 7), [64, 80, 96, 64, 80, 96, 64]);
    assert_eq!(src.dropped(), 4, "two bad files, dropped on each of two passes");
    assert!(!src.is_demo());
}

#[test]
fn a_single_image_replays_forever() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("face.png");
    std::fs::write(&p, png(&frames()[0])).unwrap();
    let mut src = ReplaySource::open(&p, 500).unwrap();
    let a = src.next_frame(WAIT).unwrap();
    let b = src.next_frame(WAIT).unwrap();
    assert_eq!(a.image, b.image);
    assert!(b.seq > a.seq);
}

#[test]
fn a_concatenated_mjpeg_file_is_split_into_frames_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("capture.mjpeg");
    let f = frames();
    let mut stream = Vec::new();
    for (i, img) in f.iter().enumerate() {
        let j = jpeg(img);
        // Webcams often omit the Huffman tables; the second frame does here.
        stream.extend_from_slice(&if i == 1 { remove_huffman_tables(&j).unwrap() } else { j });
    }
    // A corrupt frame (a valid start, then damage) between good ones, and a truncated one at the end.
    let mut bad = jpeg(&f[0]);
    let len = bad.len();
    bad[len / 3..len / 3 + 40].fill(0x00);
    bad.truncate(len - 10);
    stream.extend_from_slice(&bad);
    stream.extend_from_slice(&jpeg(&f[0])[..300]);
    std::fs::write(&p, &stream).unwrap();

    let mut src = ReplaySource::open(&p, 500).unwrap();
    assert_eq!(widths(&mut src, 7), [64, 80, 96, 64, 80, 96, 64]);
    assert!(src.dropped() >= 2, "the corrupt and the truncated frame are counted: {}", src.dropped());
}

#[test]
fn pacing_follows_the_frame_rate_and_honours_the_timeout() {
    let mut src = ReplaySource::from_images(frames(), 100).unwrap();
    let start = Instant::now();
    for _ in 0..21 {
        src.next_frame(WAIT).unwrap();
    }
    let took = start.elapsed();
    // 20 intervals of 10 ms: not faster than the rate, and not wildly slower.
    assert!(took >= Duration::from_millis(190) && took < Duration::from_millis(1500), "{took:?}");

    // A timeout shorter than the interval returns Timeout, bounded.
    let mut slow = ReplaySource::from_images(frames(), 1).unwrap();
    slow.next_frame(WAIT).unwrap();
    let t = Instant::now();
    assert!(matches!(slow.next_frame(Duration::from_millis(50)), Err(CameraError::Timeout(_))));
    assert!(t.elapsed() < Duration::from_millis(500));
}

#[test]
fn in_memory_replays_can_stop_at_the_end() {
    let imgs: Vec<RgbImage> = (0..3).map(|i| RgbImage::from_pixel(8, 8, Rgb([i * 50, 0, 0]))).collect();
    let mut once = ReplaySource::from_images(imgs.clone(), 1000).unwrap().looping(false);
    for want in &imgs {
        assert_eq!(&once.next_frame(WAIT).unwrap().image, want);
    }
    assert!(matches!(once.next_frame(WAIT), Err(CameraError::EndOfReplay)));
    assert!(ReplaySource::from_images(Vec::new(), 30).is_err());
    assert!(ReplaySource::from_images(imgs, 0).is_err());
}

#[test]
fn unusable_replays_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let junk = dir.path().join("junk.mjpeg");
    std::fs::write(&junk, vec![0x42u8; 10_000]).unwrap();
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir(&bad_dir).unwrap();
    std::fs::write(bad_dir.join("x.jpg"), b"\xFF\xD8 nope").unwrap();
    for p in [dir.path().join("missing"), empty] {
        let e = ReplaySource::open(&p, 30).err().expect("refused");
        assert!(matches!(e, CameraError::Replay { .. }), "{e}");
    }
    // Files that open but hold nothing decodable fail on the first frame instead of spinning.
    for p in [junk, bad_dir] {
        let mut src = ReplaySource::open(&p, 30).unwrap();
        let e = src.next_frame(WAIT).unwrap_err();
        assert!(matches!(e, CameraError::Replay { .. }), "{}: {e}", p.display());
    }
}
