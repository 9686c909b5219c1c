//! `enroll` (filled in with the API client).

use super::{EnrollArgs, Exit};
use crate::config::Loaded;

/// `enroll`.
pub fn run(_loaded: &Loaded, _args: EnrollArgs) -> Exit {
    eprintln!("error: enroll is not built yet");
    Exit::Fatal
}
