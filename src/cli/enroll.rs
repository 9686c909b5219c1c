//! `enroll`: saves an application from image files in the durable queue, prints its reference code as soon as it
//! is committed, then waits up to `--wait` seconds for the uploader to send it. Main thread; starts the queue
//! thread, the uploader thread and (with no `api.base_url`) the embedded sandbox, and joins them before returning.
//!
//! Exit codes: 0 done, 3 the customer must act, 5 saved but not sent yet, 4 failed for good or not saved.

use super::output::print_json;
use super::queue_cmd::open_queue;
use super::{EnrollArgs, Exit};
use crate::api::ErrorCode;
use crate::config::Loaded;
use crate::contact::{Email, Phone};
use crate::encode::UploadJpeg;
use crate::queue::{Event, NewEnrollment, QueueHandle, StepKind};
use crate::sandbox::Sandbox;
use crate::uploader::{Uploader, UploaderError};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// The uploader and, when no API is configured, the embedded sandbox it sends to.
pub(crate) struct Sender {
    uploader: Uploader,
    sandbox: Option<Sandbox>,
}

impl Sender {
    /// Another client for the API this sender sends to (the operator console's), and whether it is the embedded
    /// sandbox.
    pub(crate) fn api_client(&self, loaded: &Loaded) -> Result<(crate::api::ApiClient, bool), String> {
        let cfg = &loaded.config;
        let client = match (&self.sandbox, &cfg.api.base_url) {
            (Some(sb), _) => crate::api::ApiClient::new(&cfg.api, &cfg.face_match, sb.base_url(), sb.api_key().clone()),
            (None, Some(url)) => crate::api::ApiClient::with_credentials(
                &cfg.api,
                &cfg.face_match,
                url.clone(),
                loaded.api_key.clone(),
                loaded.tls.clone(),
            ),
            (None, None) => return Err("no API is configured".into()),
        }
        .map_err(|e| e.to_string())?;
        Ok((client, self.sandbox.is_some()))
    }

    /// Stops the uploader, then the sandbox.
    pub(crate) fn shutdown(self) {
        self.uploader.shutdown();
        if let Some(s) = self.sandbox {
            s.shutdown();
        }
    }
}

/// Starts the uploader against the configured API, or the embedded sandbox when `api.base_url` is unset.
pub(crate) fn start_sender(loaded: &Loaded, q: &QueueHandle) -> Result<Sender, String> {
    let (client, sandbox) = super::connect::client_for(loaded)?;
    if loaded.config.api.liveness_enabled {
        // The API client can call E3, but nothing records a liveness clip yet: say so rather than imply a check.
        log::warn!(
            "api.liveness_enabled is set, but this version records no liveness clip: applications are sent without \
             the liveness step"
        );
    }
    let uploader = Uploader::spawn(q.clone(), Box::new(client), &loaded.config.uploader)
        .map_err(|e: UploaderError| e.to_string())?;
    Ok(Sender { uploader, sandbox })
}

/// The `error` object, in the shape `super::connect::error_json` gives an API error (from the stored code).
fn error_json(code: ErrorCode, step: StepKind, http_status: Option<u16>) -> Value {
    let p = code.prompt();
    json!({
        "code": code.as_str(),
        "step": step.as_str(),
        "http_status": http_status,
        "message": p.message,
        "title": p.title,
        "action": p.action.as_str(),
        "class": p.class.as_str(),
        "detail": p.operator,
    })
}

fn refuse(json_out: bool, message: &str, exit: Exit) -> Exit {
    if json_out {
        print_json(&json!({ "state": "not_saved", "reference": null, "document_id": null, "face_score": null,
            "error": { "code": null, "step": null, "http_status": null, "message": message, "action": null } }));
    } else {
        eprintln!("error: {message}");
    }
    exit
}

/// `enroll`.
pub fn run(loaded: &Loaded, args: EnrollArgs) -> Exit {
    let json_out = args.out.json;
    let email = match Email::parse(&args.email) {
        Ok(e) => e,
        Err(e) => return refuse(json_out, &format!("--email: {e}"), Exit::Usage),
    };
    let phone = match Phone::parse(&args.phone) {
        Ok(p) => p,
        Err(e) => return refuse(json_out, &format!("--phone: {e}"), Exit::Usage),
    };
    let enc = &loaded.config.encode;
    let load =
        |p: &std::path::Path| UploadJpeg::from_operator_file(p, enc).map_err(|e| format!("{}: {e}", p.display()));
    let images = (|| -> Result<_, String> {
        let front = load(&args.front)?;
        let back = args.back.as_deref().map(load).transpose()?;
        let side = args.side.as_deref().map(load).transpose()?;
        let face = load(&args.face)?;
        Ok((front, back, side, face))
    })();
    let (front, back, side, face) = match images {
        Ok(i) => i,
        Err(e) => return refuse(json_out, &e, Exit::Usage),
    };
    // Nothing is saved for an API this configuration cannot reach (a production kiosk with no API configured).
    if let Err(e) = super::connect::check_api(loaded) {
        return refuse(json_out, &format!("not saved: {e}"), Exit::Fatal);
    }
    let q = match open_queue(loaded) {
        Ok(q) => q,
        Err(e) => return refuse(json_out, &e.to_string(), Exit::Fatal),
    };
    let exit = enroll_with(loaded, &q, NewEnrollment { email, phone, front, back, side, face }, args.wait, json_out);
    q.shutdown();
    exit
}

fn enroll_with(loaded: &Loaded, q: &QueueHandle, new: NewEnrollment, wait: u64, json_out: bool) -> Exit {
    let events = match q.subscribe() {
        Ok(e) => e,
        Err(e) => return refuse(json_out, &e.to_string(), Exit::Fatal),
    };
    let saved = match q.enqueue(new) {
        Ok(s) => s,
        Err(e) => return refuse(json_out, &format!("not saved: {e}"), Exit::Fatal),
    };
    // COMMIT has returned: the application is saved. Say so at once (a crash from here on loses nothing).
    if !json_out {
        println!("saved {}", saved.reference);
        let _ = std::io::stdout().flush();
    }
    let mut out = json!({ "state": "queued", "reference": saved.reference, "document_id": null,
        "face_score": null, "error": null });
    let mut exit = Exit::Queued;
    if wait > 0 {
        let deadline = Instant::now() + Duration::from_secs(wait);
        match start_sender(loaded, q) {
            Err(msg) => log::error!("cannot send now ({msg}); {} stays queued", saved.reference),
            Ok(sender) => {
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ev = match events.recv_timeout(left) {
                        Ok(ev) => ev,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    };
                    match ev {
                        Event::Done { id, document_id, face_score, .. } if id == saved.id => {
                            out["state"] = json!("done");
                            out["document_id"] = json!(document_id);
                            out["face_score"] = json!(face_score);
                            exit = Exit::Done;
                            break;
                        }
                        Event::NeedsUser { id, step, code, http_status, .. } if id == saved.id => {
                            out["state"] = json!("needs_user");
                            out["error"] = error_json(code, step, http_status);
                            exit = Exit::CustomerMustAct;
                            break;
                        }
                        Event::Failed { id, step, code, http_status, .. } if id == saved.id => {
                            out["state"] = json!("failed");
                            out["error"] = error_json(code, step, http_status);
                            exit = Exit::Fatal;
                            break;
                        }
                        Event::Paused { id, step, code, http_status, .. }
                            if id == saved.id && code.prompt().class == crate::api::ErrorClass::Transient =>
                        {
                            // TLS fails or the gateway refuses this kiosk's certificate: the application stays
                            // queued and goes out by itself once that is fixed (a renewed certificate is loaded
                            // without a restart), so keep waiting; the answer says why it is not sent yet.
                            out["error"] = error_json(code, step, http_status);
                        }
                        Event::Paused { id, step, code, http_status, .. } if id == saved.id => {
                            // The API rejected the key: an operator must fix the configuration. The application
                            // stays queued and is sent once the key works.
                            out["state"] = json!("failed");
                            out["error"] = error_json(code, step, http_status);
                            exit = Exit::Fatal;
                            break;
                        }
                        Event::Retrying { id, step, code, http_status, .. } if id == saved.id => {
                            // Keep the last error so a "queued" answer says why it is not sent yet.
                            out["error"] = error_json(code, step, http_status);
                        }
                        Event::StepDone { id, .. } if id == saved.id => {
                            out["error"] = Value::Null;
                        }
                        _ => {}
                    }
                }
                sender.shutdown();
            }
        }
        // What the server confirmed so far (a face mismatch still has a document id).
        if let Ok(d) = q.show(&saved.reference) {
            if out["document_id"].is_null() {
                out["document_id"] = json!(d.summary.document_id);
            }
            if out["face_score"].is_null() {
                out["face_score"] = json!(d.summary.face_score);
            }
        }
    }
    if json_out {
        print_json(&out);
    } else {
        match exit {
            Exit::Done => println!(
                "done: {} (document {}, face score {})",
                saved.reference,
                out["document_id"].as_str().unwrap_or("?"),
                out["face_score"].as_f64().map(|s| format!("{s:.3}")).unwrap_or_else(|| "?".into())
            ),
            Exit::Queued => {
                println!("not sent yet: {} is saved; the next drain or the kiosk sends it", saved.reference)
            }
            _ => println!(
                "{}: {} ({})",
                saved.reference,
                out["error"]["message"].as_str().unwrap_or("failed"),
                out["error"]["code"].as_str().unwrap_or("")
            ),
        }
    }
    exit
}
