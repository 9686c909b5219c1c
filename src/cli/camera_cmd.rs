//! `cameras` and `inspect` (filled in by the capture issue).

use super::{Exit, InspectArgs, JsonFlag};
use crate::config::Loaded;

/// `cameras`.
pub fn cameras(_loaded: &Loaded, _out: JsonFlag) -> Exit {
    eprintln!("error: cameras is not built yet");
    Exit::Fatal
}

/// `inspect`.
pub fn inspect(_loaded: &Loaded, _args: InspectArgs) -> Exit {
    eprintln!("error: inspect is not built yet");
    Exit::Fatal
}
