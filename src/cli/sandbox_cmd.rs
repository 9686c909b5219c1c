//! `sandbox` (filled in with the sandbox).

use super::{Exit, SandboxArgs};
use crate::config::Loaded;

/// `sandbox`.
pub fn run(_loaded: &Loaded, _args: SandboxArgs) -> Exit {
    eprintln!("error: sandbox is not built yet");
    Exit::Fatal
}
