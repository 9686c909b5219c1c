//! `queue status | list | show | retry | purge | drain`: the operator's view of the local queue. Main thread; opens
//! the queue thread (and for `drain` the uploader, against the configured API or the embedded sandbox) and joins
//! them before returning.

use super::output::print_json;
use super::{Exit, QueueCommand};
use crate::config::Loaded;
use crate::queue::{Acknowledgeable, EnrollmentSummary, QueueError, QueueHandle, QueueStatus};
use serde_json::json;
use std::time::{Duration, Instant};

/// Opens the queue in the configured data directory.
pub(crate) fn open_queue(loaded: &Loaded) -> Result<QueueHandle, QueueError> {
    let c = &loaded.config;
    let q = QueueHandle::open(&c.storage.data_dir, &c.queue, c.uploader.retry_cap)?;
    if let Some(p) = &q.open_report().quarantined {
        eprintln!("warning: the queue database was corrupt; it was moved to {} and a fresh one created", p.display());
    }
    Ok(q)
}

fn exit_for(e: &QueueError) -> Exit {
    match e {
        QueueError::NotFound(_) => Exit::Usage,
        _ => Exit::Fatal,
    }
}

fn fail(json: bool, e: &QueueError) -> Exit {
    if json {
        print_json(&json!({ "error": { "message": e.to_string() } }));
    } else {
        eprintln!("error: {e}");
    }
    exit_for(e)
}

fn age(ms: i64) -> String {
    let secs = (crate::queue::now_ms() - ms).max(0) as u64 / 1000;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn print_status(s: &QueueStatus) {
    if let Some(r) = s.locked {
        println!("LOCKED: {r}");
    }
    let c = |k: &str| s.counts.get(k).copied().unwrap_or(0);
    println!(
        "waiting: {} (pending {}, sending {}, needs a person {}, failed {}); done: {}",
        s.waiting,
        c("pending"),
        c("in_flight"),
        c("needs_user"),
        c("failed"),
        c("done")
    );
    if let Some(o) = s.oldest_waiting_s {
        println!("oldest waiting: {}", humantime::format_duration(Duration::from_secs(o)));
    }
    println!("image bytes stored: {}", s.stored_bytes);
    println!("expired and purged unsent: {}", s.expired_purged);
    println!("sends without an answer (ambiguous): {}", s.ambiguous_sends);
    for a in &s.alerts {
        println!("ALERT: {a}");
    }
}

fn print_summary(e: &EnrollmentSummary) {
    let err = match (&e.last_error, &e.last_error_step) {
        (Some(c), Some(s)) => format!("  last error: {c} at {s}"),
        (Some(c), None) => format!("  last error: {c}"),
        _ => String::new(),
    };
    println!(
        "{:>5}  {}  {:<10}  {:>3} attempts  {} ago{}",
        e.id,
        e.reference,
        e.state.as_str(),
        e.attempts,
        age(e.created_at_ms),
        err
    );
}

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|e| json!({ "error": { "message": e.to_string() } }))
}

/// `queue status` and `queue list` while another process holds the queue: a read-only snapshot, without its lock.
fn run_read_only(loaded: &Loaded, cmd: &QueueCommand) -> Option<Exit> {
    let c = &loaded.config;
    let json_out = match cmd {
        QueueCommand::Status(o) | QueueCommand::List(o) => o.json,
        _ => return None,
    };
    let store = match crate::queue::Store::open_read_only(&c.storage.data_dir, &c.queue) {
        Ok(s) => s,
        Err(e) => return Some(fail(json_out, &e)),
    };
    if !json_out {
        eprintln!("note: another ekyc-kiosk process holds the queue; this is a read-only snapshot");
    }
    Some(match cmd {
        QueueCommand::Status(_) => match store.snapshot(|s| s.status()) {
            Ok(s) => {
                if json_out {
                    print_json(&to_value(&s));
                } else {
                    print_status(&s);
                }
                if s.locked.is_some() { Exit::Fatal } else { Exit::Done }
            }
            Err(e) => fail(json_out, &e),
        },
        _ => match store.snapshot(|s| s.list()) {
            Ok(list) => {
                print_list(&list, json_out);
                Exit::Done
            }
            Err(e) => fail(json_out, &e),
        },
    })
}

fn print_list(list: &[EnrollmentSummary], json_out: bool) {
    if json_out {
        print_json(&json!({ "enrollments": to_value(&list) }));
    } else if list.is_empty() {
        println!("the queue is empty");
    } else {
        list.iter().for_each(print_summary);
    }
}

/// `queue ...`.
pub fn run(loaded: &Loaded, cmd: QueueCommand) -> Exit {
    let q = match open_queue(loaded) {
        Ok(q) => q,
        Err(e) => {
            if matches!(e, QueueError::Busy(_))
                && let Some(exit) = run_read_only(loaded, &cmd)
            {
                return exit;
            }
            let json = match &cmd {
                QueueCommand::Status(o)
                | QueueCommand::List(o)
                | QueueCommand::Acknowledge(o)
                | QueueCommand::Check(o) => o.json,
                QueueCommand::Show { out, .. }
                | QueueCommand::Retry { out, .. }
                | QueueCommand::Purge { out, .. }
                | QueueCommand::Drain { out, .. } => out.json,
            };
            return fail(json, &e);
        }
    };
    let exit = run_with(loaded, &q, cmd);
    q.shutdown();
    exit
}

fn run_with(loaded: &Loaded, q: &QueueHandle, cmd: QueueCommand) -> Exit {
    match cmd {
        QueueCommand::Status(out) => match q.status() {
            Ok(s) => {
                if out.json {
                    print_json(&to_value(&s));
                } else {
                    print_status(&s);
                }
                if s.locked.is_some() { Exit::Fatal } else { Exit::Done }
            }
            Err(e) => fail(out.json, &e),
        },
        QueueCommand::List(out) => match q.list() {
            Ok(list) => {
                print_list(&list, out.json);
                Exit::Done
            }
            Err(e) => fail(out.json, &e),
        },
        QueueCommand::Show { id, out } => match q.show(&id) {
            Ok(d) => {
                if out.json {
                    print_json(&to_value(&d));
                } else {
                    print_summary(&d.summary);
                    println!("  email: {}  phone: +{}", d.email, d.phone);
                    if let Some(doc) = &d.summary.document_id {
                        println!("  document id: {doc}");
                    }
                    if let Some(s) = d.summary.face_score {
                        println!("  face score: {s:.3}");
                    }
                    for s in &d.steps {
                        let err = s.last_error.as_deref().map(|c| format!("  last error: {c}")).unwrap_or_default();
                        println!(
                            "  {:<9} {:<10} {} attempts ({} unanswered){err}",
                            s.kind.as_str(),
                            s.state.as_str(),
                            s.attempts,
                            s.ambiguous
                        );
                    }
                }
                Exit::Done
            }
            Err(e) => fail(out.json, &e),
        },
        QueueCommand::Retry { id, out } => match q.retry(&id) {
            Ok(s) => {
                if out.json {
                    print_json(&to_value(&s));
                } else {
                    println!("{} is due now (state {})", s.reference, s.state.as_str());
                }
                Exit::Done
            }
            Err(e) => fail(out.json, &e),
        },
        QueueCommand::Purge { id, yes, out } => {
            if !yes {
                let msg = "queue purge deletes the application and its images from this device; add --yes to confirm";
                if out.json {
                    print_json(&json!({ "error": { "message": msg } }));
                } else {
                    eprintln!("error: {msg}");
                }
                return Exit::Usage;
            }
            match q.purge(&id) {
                Ok(ev) => {
                    if out.json {
                        print_json(&to_value(&ev));
                    } else if let crate::queue::Event::Purged { reference, .. } = &ev {
                        println!("{reference} purged from this device (not from the API)");
                    }
                    Exit::Done
                }
                Err(e) => fail(out.json, &e),
            }
        }
        QueueCommand::Acknowledge(out) => {
            let mut cleared = Vec::new();
            for which in [Acknowledgeable::Quarantine, Acknowledgeable::Expired] {
                match q.acknowledge(which) {
                    Ok(true) => cleared.push(which),
                    Ok(false) => {}
                    Err(e) => return fail(out.json, &e),
                }
            }
            if out.json {
                print_json(&json!({ "acknowledged": !cleared.is_empty(), "alerts": cleared }));
            } else if cleared.is_empty() {
                println!("no alert to acknowledge");
            } else {
                for which in cleared {
                    println!("{} alert acknowledged", which.as_str());
                }
            }
            Exit::Done
        }
        QueueCommand::Check(out) => check(q, out.json),
        QueueCommand::Drain { timeout, out } => drain(loaded, q, Duration::from_secs(timeout), out.json),
    }
}

/// `queue check`: the database's integrity, the key, and the copies kept in quarantine. Sound means the integrity
/// check says `ok` and the queue is not locked; quarantined copies are reported (an operator decides about them) but
/// do not make the queue unsound.
fn check(q: &QueueHandle, json: bool) -> Exit {
    let integrity = match q.integrity_check() {
        Ok(s) => s,
        Err(e) => return fail(json, &e),
    };
    let status = match q.status() {
        Ok(s) => s,
        Err(e) => return fail(json, &e),
    };
    let quarantined = quarantined_copies(&q.dir().join(crate::queue::QUARANTINE_DIR));
    let sound = integrity == "ok" && status.locked.is_none();
    if json {
        print_json(&json!({
            "ok": sound,
            "integrity": integrity,
            "locked": status.locked,
            "quarantined": quarantined,
            "waiting": status.waiting,
            "done": status.counts.get("done").copied().unwrap_or(0),
        }));
    } else {
        println!("integrity: {integrity}");
        match status.locked {
            Some(r) => println!("LOCKED: {r}"),
            None => println!("key: ok"),
        }
        if quarantined.is_empty() {
            println!("quarantine: empty");
        } else {
            println!("quarantine: {} copy(ies) kept: {}", quarantined.len(), quarantined.join(", "));
        }
        println!("{}", if sound { "the queue is sound" } else { "the queue is NOT sound" });
    }
    if sound { Exit::Done } else { Exit::Fatal }
}

/// The names of the quarantined copies (directories under `<data_dir>/quarantine`), sorted; none when it is absent.
fn quarantined_copies(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn drain(loaded: &Loaded, q: &QueueHandle, timeout: Duration, json: bool) -> Exit {
    let deadline = Instant::now() + timeout;
    let sender = match super::enroll::start_sender(loaded, q) {
        Ok(s) => s,
        Err(msg) => {
            if json {
                print_json(&json!({ "error": { "message": msg } }));
            } else {
                eprintln!("error: {msg}");
            }
            return Exit::Fatal;
        }
    };
    // The fleet metrics and the service status while it drains (and a last file once it has).
    let monitor = match crate::metrics::Monitor::start(&loaded.config.metrics, q.clone(), q.dir().to_owned(), "drain") {
        Ok(m) => Some(m),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    };
    // SIGTERM or SIGINT (systemd stopping the drain service, Ctrl-C) ends the wait: the uploader gives its step
    // back and what remains is reported as still to send (exit 5).
    let signals = match crate::service::ShutdownSignals::install(|_| {}) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    };
    let flag = signals.as_ref().map(|s| s.flag());
    let r = crate::uploader::wait_drained_or(q, deadline, &|| flag.as_ref().is_some_and(|f| f.is_set()));
    sender.shutdown();
    if let Some(m) = monitor {
        m.shutdown();
    }
    if let Some(name) = signals.as_ref().and_then(|s| s.received()) {
        log::info!("queue drain: stopped by {name}; the step in progress was given back to the queue");
    }
    drop(signals);
    match r {
        Ok(d) => {
            let status = q.status().ok();
            let needs = status.as_ref().map(|s| s.counts.get("needs_user").copied().unwrap_or(0)).unwrap_or(0);
            if json {
                print_json(&json!({ "drained": d.drained, "remaining": d.remaining, "needs_user": needs }));
            } else if d.drained {
                println!("queue drained; {needs} application(s) need a person");
            } else {
                println!("deadline reached; {} application(s) still to send", d.remaining);
            }
            if d.drained { Exit::Done } else { Exit::Queued }
        }
        Err(e) => fail(json, &e),
    }
}
