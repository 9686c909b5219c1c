//! `queue ...` (filled in by the queue issue).

use super::{Exit, QueueCommand};
use crate::config::Loaded;

/// `queue ...`.
pub fn run(_loaded: &Loaded, _cmd: QueueCommand) -> Exit {
    eprintln!("error: queue is not built yet");
    Exit::Fatal
}
