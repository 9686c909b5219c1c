//! Exit codes and the shape of command output (readable lines, or one JSON object with `--json`). Main thread.

use std::process::ExitCode;

/// The process exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Done,
    /// 2: usage error.
    Usage,
    /// 3: the customer must act.
    CustomerMustAct,
    /// 4: configuration or fatal error.
    Fatal,
    /// 5: saved but not sent yet.
    Queued,
    /// 6: the API could not be reached or had trouble (transient or unanswered): the same command may work later.
    Transient,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Usage => 2,
            Exit::CustomerMustAct => 3,
            Exit::Fatal => 4,
            Exit::Queued => 5,
            Exit::Transient => 6,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// Prints a JSON value as one line on stdout.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}
