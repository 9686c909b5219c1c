//! `inspect FILE [--document] [--json]`: runs the on-device quality checks on an image file and explains the
//! verdict (every metric and the hints), for operators and support. Main thread.

use super::output::print_json;
use super::{Exit, InspectArgs};
use crate::capture::{Mode, QualityChecker, Verdict};
use crate::config::Loaded;
use crate::encode::{self, EncodeError};

/// `inspect`: exit 0 accepted, 3 refused, 4 the file cannot be read or decoded.
pub fn inspect(loaded: &Loaded, args: InspectArgs) -> Exit {
    let mode = if args.document { Mode::DocumentFront } else { Mode::Face };
    let image = match read(&args.file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return Exit::Fatal;
        }
    };
    let mut checker = match QualityChecker::new(&loaded.config.capture) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Fatal;
        }
    };
    let verdict = checker.check(mode, &image);
    if args.out.json {
        match serde_json::to_value(&verdict) {
            Ok(v) => print_json(&v),
            Err(e) => {
                eprintln!("error: cannot render the verdict: {e}");
                return Exit::Fatal;
            }
        }
    } else {
        print!("{}", render(&verdict));
    }
    if verdict.accepted { Exit::Done } else { Exit::CustomerMustAct }
}

fn read(path: &std::path::Path) -> Result<image::RgbImage, EncodeError> {
    use std::io::Read;
    let err = |source| EncodeError::Read { path: path.to_owned(), source };
    let f = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    f.take(encode::MAX_INPUT_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() as u64 > encode::MAX_INPUT_FILE_BYTES {
        return Err(EncodeError::FileTooLarge);
    }
    encode::decode_untrusted(&bytes)
}

/// The readable report: the verdict, the hints, then every metric (faces among them).
fn render(v: &Verdict) -> String {
    let what = match v.mode {
        Mode::Face => "face photo",
        Mode::DocumentFront => "document (front)",
        Mode::DocumentBack => "document (back)",
    };
    let mut out = format!("{}: {what}\n", if v.accepted { "accepted" } else { "refused" });
    for h in &v.hints {
        out.push_str(&format!("  hint {:<22} {}\n", h.code(), h.text()));
    }
    for (k, shown) in v.metric_rows() {
        out.push_str(&format!("  {k:<14} {shown}\n"));
    }
    out
}
