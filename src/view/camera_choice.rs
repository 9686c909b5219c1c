//! [`CameraChoice`]: the camera an operator picked on the console ("Use this camera"), remembered across restarts
//! in `<data_dir>/camera-choice`. Saved by the "ui-capture" thread when the choice is made; read once by the same
//! thread when [`super::LiveServices::remember_camera`] hands it over at start.
//!
//! The file records the choice together with the configured camera it was made over. The latest decision wins: if
//! the configuration names another camera since (an administrator changed it), the configuration applies and the
//! stale choice is removed; choosing the configured camera again removes the file. The file holds camera option ids
//! only (`auto`, `demo`, `device:N`, `replay:PATH`), nothing of any customer.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const CHOICE_FILE: &str = "camera-choice";
/// The largest file read (two option ids with their keys).
const MAX_BYTES: u64 = 8 * 1024;

/// The remembered camera choice of one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraChoice {
    path: PathBuf,
}

/// The file's content: the configured camera when the choice was made, and the choice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Saved {
    configured: String,
    chosen: String,
}

impl CameraChoice {
    /// The choice kept in `data_dir`.
    pub fn new(data_dir: &Path) -> CameraChoice {
        CameraChoice { path: data_dir.join(CHOICE_FILE) }
    }

    /// Where it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered choice, if one was made over the camera configured now (`configured`, an option id). A stale
    /// choice is removed; an unreadable or malformed file is logged and ignored (the configured camera applies).
    pub fn load(&self, configured: &str) -> Option<String> {
        let text = match read_bounded(&self.path) {
            Ok(Some(t)) => t,
            Ok(None) => return None,
            Err(e) => {
                log::warn!("ignoring the remembered camera choice {}: {e}", self.path.display());
                return None;
            }
        };
        let Some(saved) = parse(&text) else {
            log::warn!("ignoring the remembered camera choice {}: it is not in the expected form", self.path.display());
            return None;
        };
        if saved.configured != configured {
            log::info!(
                "the configured camera changed to {configured} since the operator chose {}: the configuration applies",
                saved.chosen
            );
            self.forget();
            return None;
        }
        Some(saved.chosen)
    }

    /// Remembers `chosen` over the `configured` camera; choosing the configured camera forgets any earlier choice.
    /// Replaced durably (`durable::replace_file`), so a crash or a power cut leaves the old choice or the new one.
    pub fn save(&self, configured: &str, chosen: &str) -> std::io::Result<()> {
        if chosen == configured {
            self.forget();
            return Ok(());
        }
        crate::durable::replace_file(
            &self.path,
            format!("configured = {configured}\nchosen = {chosen}\n").as_bytes(),
            0o600,
        )
    }

    /// Removes the remembered choice (nothing to do if there is none).
    fn forget(&self) {
        if let Err(e) = crate::durable::remove_file(&self.path) {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Reads the file if it exists, at most [`MAX_BYTES`]; a longer file is an error.
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is too large"));
    }
    Ok(Some(text))
}

/// `configured = ID` and `chosen = ID` lines, in any order, each exactly once. Pure.
fn parse(text: &str) -> Option<Saved> {
    let (mut configured, mut chosen) = (None, None);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line.split_once('=')?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let slot = match key.trim() {
            "configured" => &mut configured,
            "chosen" => &mut chosen,
            _ => return None,
        };
        if slot.replace(value.to_string()).is_some() {
            return None;
        }
    }
    Some(Saved { configured: configured?, chosen: chosen? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_expected_form() {
        let ok = Saved { configured: "auto".into(), chosen: "device:1".into() };
        for text in [
            "configured = auto\nchosen = device:1\n",
            "chosen=device:1\n\nconfigured=auto",
            "  configured = auto \n chosen = device:1",
        ] {
            assert_eq!(parse(text), Some(ok.clone()), "{text:?}");
        }
        // A replay path keeps its own '=' and spaces.
        let p = parse("configured = replay:/srv/a=b c\nchosen = demo").unwrap();
        assert_eq!(p.configured, "replay:/srv/a=b c");
        for bad in [
            "",
            "configured = auto",
            "chosen = demo",
            "configured = auto\nchosen =",
            "configured = auto\nchosen = demo\nchosen = auto",
            "configured = auto\nchosen = demo\nextra = 1",
            "configured auto\nchosen demo",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn remembers_a_choice_until_the_configuration_or_the_operator_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = CameraChoice::new(dir.path());
        assert_eq!(c.load("auto"), None, "nothing chosen yet");
        c.save("auto", "device:1").unwrap();
        assert_eq!(c.load("auto"), Some("device:1".into()));
        assert_eq!(c.load("auto"), Some("device:1".into()), "loading keeps it");
        // The operator picks another, then the configured camera again: nothing is left to remember.
        c.save("auto", "demo").unwrap();
        assert_eq!(c.load("auto"), Some("demo".into()));
        c.save("auto", "auto").unwrap();
        assert!(!c.path().exists());
        assert_eq!(c.load("auto"), None);
        // The configuration changed since the choice: it applies, and the stale choice goes.
        c.save("auto", "demo").unwrap();
        assert_eq!(c.load("device:0"), None);
        assert!(!c.path().exists());
        assert!(!c.path().with_extension("tmp").exists(), "no temporary file is left behind");
    }

    #[test]
    fn a_broken_file_is_ignored_and_kept_for_inspection() {
        let dir = tempfile::tempdir().unwrap();
        let c = CameraChoice::new(dir.path());
        std::fs::write(c.path(), "\u{0}\u{1}garbage").unwrap();
        assert_eq!(c.load("auto"), None);
        std::fs::write(c.path(), "x".repeat(MAX_BYTES as usize + 1)).unwrap();
        assert_eq!(c.load("auto"), None, "an oversized file is not read whole");
        std::fs::write(c.path(), [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(c.load("auto"), None, "not UTF-8");
        assert!(c.path().exists());
        // A new choice replaces it.
        c.save("auto", "demo").unwrap();
        assert_eq!(c.load("auto"), Some("demo".into()));
    }
}
