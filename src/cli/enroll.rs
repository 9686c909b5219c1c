//! `enroll` (filled in with the API client).

use super::{EnrollArgs, Exit};
use crate::config::Loaded;

/// `enroll`.
pub fn run(_loaded: &Loaded, _args: EnrollArgs) -> Exit {
    eprintln!("error: enroll is not built yet");
    Exit::Fatal
}

/// Temporary until the API client lands (replaced by the queue-backed version).
pub(crate) struct Sender;
impl Sender {
    pub(crate) fn shutdown(self) {}
}
pub(crate) fn start_sender(_: &Loaded, _: &crate::queue::QueueHandle) -> Result<Sender, String> {
    Err("the API client is not built yet".into())
}
