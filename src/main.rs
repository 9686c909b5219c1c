//! The `ekyc-kiosk` binary: argument parsing and exit codes only; everything else is in the library.

fn main() -> std::process::ExitCode {
    ekyc_kiosk::cli::main()
}
