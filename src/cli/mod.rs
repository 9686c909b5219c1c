//! The command line: argument definitions (clap), the exit codes, and dispatch to one file per command group.
//! Runs on the main thread; commands that need workers (the sandbox, the uploader) start and join them.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod camera_cmd;
mod connect;
mod enroll;
mod inspect_cmd;
mod kiosk_cmd;
mod output;
mod queue_cmd;
mod requests;
mod sandbox_cmd;

pub use output::Exit;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  2  usage error
  3  the customer must act (retake a photo, change email or phone)
  4  configuration or fatal error (bad key, bad config, refused for a reason no retry fixes)
  5  saved but not sent yet (the next drain or the running kiosk sends it)";

/// eKYC onboarding kiosk: capture, check, queue and submit identity applications to the Lapis eKYC API.
#[derive(Debug, Parser)]
#[command(name = "ekyc-kiosk", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (see assets/kiosk.example.toml). Environment variables EKYC_* override it.
    #[arg(long, global = true, value_name = "FILE", env = "EKYC_CONFIG")]
    pub config: Option<PathBuf>,

    /// Camera source: auto (a camera; in demo mode, else the demo frames), device, demo, or replay:PATH (a folder
    /// of frames, an image or an MJPEG file). Overrides camera.source.
    #[arg(long, global = true, value_name = "SOURCE")]
    pub camera: Option<String>,

    /// Run as a demo: the built-in sandbox API when no api.base_url is set, and the demo pictures when no camera is
    /// found. Without it, the product is a demo only when nothing is configured (sets demo.enabled = true).
    #[arg(long, global = true)]
    pub demo: bool,

    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The command; without one, the kiosk starts.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole application (document, face, request) from image files.
    #[command(after_help = EXIT_CODES)]
    Enroll(EnrollArgs),
    /// Operator functions on the requests held by the API (list, show, accept, delete).
    #[command(subcommand, after_help = EXIT_CODES)]
    Requests(RequestsCommand),
    /// Inspect and manage the local queue of applications waiting to be sent.
    #[command(subcommand, after_help = EXIT_CODES)]
    Queue(QueueCommand),
    /// Run the local sandbox API (for tests, demos and operator training).
    Sandbox(SandboxArgs),
    /// Print the effective configuration, secrets redacted.
    Config,
    /// List the cameras found and the replay and demo sources; with --check, test the configured camera.
    #[command(
        after_help = "Exit codes:\n  0  listed; with --check: the camera delivered frames within its deadlines\n  \
                            4  the selected source cannot work; with --check: no camera, busy, no frames in time, or \
                            the disconnect and reopen did not happen"
    )]
    Cameras(CamerasArgs),
    /// The operator console: the queue of applications on this kiosk, with retry and purge (a desktop window).
    Operator,
    /// Render every main screen to PNG without a display, from demo data (for the README gallery and reviews).
    Screenshot(ScreenshotArgs),
    /// Run the on-device quality checks on an image file and explain the verdict.
    #[command(
        after_help = "Exit codes:\n  0  accepted\n  3  refused (see the hints)\n  4  the file cannot be read or decoded"
    )]
    Inspect(InspectArgs),
}

/// `--json`.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print one JSON object on stdout instead of readable lines.
    #[arg(long)]
    pub json: bool,
}

/// `cameras`.
#[derive(Debug, Args)]
pub struct CamerasArgs {
    /// Open the configured camera the way the kiosk does, read frames, run the face checks on the last one and
    /// report the format, the frame rate and the time to the first frame (for support staff and the VM test).
    #[arg(long)]
    pub check: bool,
    /// Frames to decode (with --check).
    #[arg(long, value_name = "N", default_value_t = 30, requires = "check",
          value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub frames: u32,
    /// Save the last frame as PNG (with --check).
    #[arg(long, value_name = "FILE", requires = "check")]
    pub save: Option<PathBuf>,
    /// After the frames, wait for the camera to be disconnected and to come back, then decode the frames again
    /// (unplug and replug it, or set vivid's disconnect control). With --check.
    #[arg(long, requires = "check")]
    pub expect_disconnect: bool,
    /// Longest wait, in seconds, for the disconnect and again for the reopen (with --expect-disconnect).
    #[arg(long, value_name = "S", default_value_t = 60, requires = "expect_disconnect")]
    pub wait: u64,
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// Front of the ID document (JPEG or PNG).
    #[arg(long, value_name = "FILE")]
    pub front: PathBuf,
    /// Back of the ID document.
    #[arg(long, value_name = "FILE")]
    pub back: Option<PathBuf>,
    /// Third ("side") image of the ID document.
    #[arg(long, value_name = "FILE")]
    pub side: Option<PathBuf>,
    /// Photo of the applicant's face.
    #[arg(long, value_name = "FILE")]
    pub face: PathBuf,
    /// Applicant's email address.
    #[arg(long)]
    pub email: String,
    /// Applicant's phone number with country code, e.g. +44 20 7946 0958.
    #[arg(long)]
    pub phone: String,
    /// Seconds to wait for the outcome once the application is saved (0: return as soon as it is saved).
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub wait: u64,
    #[command(flatten)]
    pub out: JsonFlag,
}

/// `requests ...`.
#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// List requests (pending and accepted unless --accepted is given).
    List {
        /// Only accepted (true) or only pending (false) requests.
        #[arg(long, value_name = "true|false")]
        accepted: Option<bool>,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Show one request.
    Show {
        /// Request id.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Accept (approve) a request after its phone-call check.
    Accept {
        /// Request id.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete a request and its registered user from the API. This is not a rejection.
    Delete {
        /// Request id.
        id: String,
        /// Confirm the deletion (required).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// `queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts by state, the oldest waiting application, alerts (locked queue, rejected API key).
    Status(JsonFlag),
    /// Every application in the queue with its state, age, attempts and last error.
    List(JsonFlag),
    /// One application with its steps.
    Show {
        /// Queue id or reference code.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Make a failed or waiting application due now.
    Retry {
        /// Queue id or reference code.
        id: String,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Delete an application and its images from this device (not from the API).
    Purge {
        /// Queue id or reference code.
        id: String,
        /// Confirm the purge (required).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        out: JsonFlag,
    },
    /// Clear the alerts that stay until an operator has seen them (read them in `queue status` first): a corrupt
    /// database moved to quarantine, unsent applications purged after queue.max_age.
    Acknowledge(JsonFlag),
    /// Check the queue's health: the database's `PRAGMA integrity_check`, the key, and copies kept in quarantine
    /// (exit 0 when sound, 4 when not; after a power cut or a disk error, or before trusting a disk image).
    Check(JsonFlag),
    /// Send what is waiting until the queue is empty or the deadline passes.
    Drain {
        /// Deadline in seconds.
        #[arg(long, value_name = "S", default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        out: JsonFlag,
    },
}

/// `sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on. Only loopback addresses are accepted.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The API key clients must send (default: a random key, printed at start).
    #[arg(long, env = "EKYC_SANDBOX_API_KEY")]
    pub api_key: Option<String>,
}

/// `screenshot`.
#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    /// Directory for the PNG files (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Window size in pixels, WIDTHxHEIGHT (e.g. 800x480, or 800x1280 for portrait).
    #[arg(long, default_value = "1280x800", value_parser = parse_size)]
    pub size: (u32, u32),
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("expected WIDTHxHEIGHT, e.g. 1280x800")?;
    let parse = |v: &str| v.trim().parse::<u32>().ok().filter(|n| (320..=7680).contains(n));
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err("width and height must be whole numbers from 320 to 7680".into()),
    }
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image file (JPEG or PNG).
    pub file: PathBuf,
    /// Check it as an ID document (default: as a face photo).
    #[arg(long)]
    pub document: bool,
    #[command(flatten)]
    pub out: JsonFlag,
}

/// Parses the arguments, installs the logger, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    // Before anything holds a secret: no core dumps of this process.
    let hardened = crate::secret::harden_process();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage.code() } else { 0 });
        }
    };
    let mut overrides: Vec<(String, String)> =
        cli.camera.iter().map(|c| ("EKYC_CAMERA_SOURCE".to_string(), c.clone())).collect();
    if cli.demo {
        overrides.push(("EKYC_DEMO_ENABLED".to_string(), "true".to_string()));
    }
    let loaded = match crate::config::load_with_overrides(cli.config.as_deref(), &overrides) {
        Ok(l) => l,
        Err(e) => {
            init_logger("info", cli.verbose);
            if cli.command.is_none() {
                // The kiosk says it is out of service on its screen (and exits 4 when closed).
                return kiosk_cmd::misconfigured(&e.to_string()).into();
            }
            eprintln!("error: {e}");
            return Exit::Fatal.into();
        }
    };
    init_logger(&loaded.config.log.level, cli.verbose);
    if let Err(e) = hardened {
        log::warn!("{e}; a crash could leave secrets in a core dump");
    }
    // The configuration holds the secrets now: take them out of the environment (children, /proc/<pid>/environ).
    for name in ["EKYC_API_KEY", "EKYC_STAFF_PIN"] {
        // SAFETY: no thread has been started yet (the queue, uploader and UI threads start in the commands below).
        unsafe { crate::secret::scrub_env(name) };
    }
    let exit = match cli.command {
        Some(Command::Enroll(args)) => enroll::run(&loaded, args),
        Some(Command::Requests(cmd)) => requests::run(&loaded, cmd),
        Some(Command::Queue(cmd)) => queue_cmd::run(&loaded, cmd),
        Some(Command::Sandbox(args)) => sandbox_cmd::run(&loaded, args),
        Some(Command::Config) => {
            print!("{}", loaded.render());
            Exit::Done
        }
        Some(Command::Cameras(args)) if args.check => camera_cmd::check(&loaded, args),
        Some(Command::Cameras(args)) => camera_cmd::cameras(&loaded, args.out),
        Some(Command::Inspect(args)) => inspect_cmd::inspect(&loaded, args),
        Some(Command::Operator) => kiosk_cmd::operator(&loaded),
        Some(Command::Screenshot(args)) => kiosk_cmd::screenshot(args),
        None => kiosk_cmd::kiosk(&loaded),
    };
    exit.into()
}

/// The logger: journald under systemd, else the terminal (see [`crate::service::init_logger`]).
fn init_logger(level: &str, verbose: u8) {
    let level = match verbose {
        0 => level,
        1 => "debug",
        _ => "trace",
    };
    crate::service::init_logger(level);
}
