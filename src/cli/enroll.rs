//! `enroll`: one whole application from image files: document upload (E1), face match (E2), then the eKYC
//! request (E4). Contact details and images are validated locally before anything is sent. Main thread.

use super::connect::{connect, error_json, exit_for, print_error_human};
use super::output::print_json;
use super::{EnrollArgs, Exit};
use crate::api::{ApiError, DocumentUpload, ErrorClass, ImageBody, NewRequest};
use crate::config::Loaded;
use crate::contact::{Email, Phone};
use crate::encode::UploadJpeg;
use serde_json::json;
use std::path::Path;

/// Runs `enroll`.
pub fn run(loaded: &Loaded, args: EnrollArgs) -> Exit {
    let email = match Email::parse(&args.email) {
        Ok(e) => e,
        Err(e) => return usage(&format!("--email: {e}")),
    };
    let phone = match Phone::parse(&args.phone) {
        Ok(p) => p,
        Err(e) => return usage(&format!("--phone: {e}")),
    };
    let enc = &loaded.config.encode;
    let load = |flag: &str, path: &Path| {
        UploadJpeg::from_operator_file(path, enc).map_err(|e| usage(&format!("--{flag} {}: {e}", path.display())))
    };
    let front = match load("front", &args.front) {
        Ok(j) => j,
        Err(e) => return e,
    };
    let back = match args.back.as_deref().map(|p| load("back", p)).transpose() {
        Ok(j) => j,
        Err(e) => return e,
    };
    let side = match args.side.as_deref().map(|p| load("side", p)).transpose() {
        Ok(j) => j,
        Err(e) => return e,
    };
    let face = match load("face", &args.face) {
        Ok(j) => j,
        Err(e) => return e,
    };

    let conn = match connect(loaded) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let api = &conn.client;

    let doc = DocumentUpload {
        front: ImageBody::from_bytes(front.bytes()),
        back: back.as_ref().map(|j| ImageBody::from_bytes(j.bytes())),
        side: side.as_ref().map(|j| ImageBody::from_bytes(j.bytes())),
    };
    let document = match api.upload_document(doc) {
        Ok(d) => d,
        Err(e) => return report(args.out.json, None, None, &e),
    };
    let score = match api.match_face(&document.document_id, ImageBody::from_bytes(face.bytes())) {
        Ok(f) => f.score,
        Err(e) => return report(args.out.json, Some(&document.document_id), None, &e),
    };
    let req = NewRequest { email, phone, document_id: document.document_id.clone() };
    if let Err(e) = api.create_request(&req) {
        return report(args.out.json, Some(&document.document_id), Some(score), &e);
    }
    if args.out.json {
        print_json(&json!({
            "state": "done",
            "document_id": document.document_id,
            "face_score": score,
            "error": null,
        }));
    } else {
        println!("done: the request is submitted; the applicant will receive an email code and a phone call");
        println!("document id: {}", document.document_id);
        println!("face score:  {score:.3}");
    }
    Exit::Done
}

fn usage(msg: &str) -> Exit {
    eprintln!("error: {msg}");
    Exit::Usage
}

fn report(json_out: bool, document_id: Option<&str>, score: Option<f64>, err: &ApiError) -> Exit {
    let state = match err.class() {
        ErrorClass::CustomerMustAct => "needs_user",
        _ => "failed",
    };
    if json_out {
        print_json(&json!({
            "state": state,
            "document_id": document_id,
            "face_score": score,
            "error": error_json(err),
        }));
    } else {
        println!("{state}");
        if let Some(d) = document_id {
            println!("document id: {d}");
        }
        print_error_human(err);
    }
    exit_for(err)
}
