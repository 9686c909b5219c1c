//! `requests ...` (filled in with the API client).

use super::{Exit, RequestsCommand};
use crate::config::Loaded;

/// `requests ...`.
pub fn run(_loaded: &Loaded, _cmd: RequestsCommand) -> Exit {
    eprintln!("error: requests is not built yet");
    Exit::Fatal
}
