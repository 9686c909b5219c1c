//! `cameras` and `inspect` (filled in by the capture issue).

use super::{Exit, JsonFlag};
use crate::config::Loaded;

/// `cameras`.
pub fn cameras(_loaded: &Loaded, _out: JsonFlag) -> Exit {
    eprintln!("error: cameras is not built yet");
    Exit::Fatal
}
