//! `requests list|show|accept|delete`: the operator's view of the requests held by the API (E5, E6, E7, E9).
//! Never reachable from the customer flow. Main thread.

use super::connect::{connect, error_json, exit_for, print_error_human};
use super::output::print_json;
use super::{Exit, RequestsCommand};
use crate::api::{ApiError, KycRequest};
use crate::config::Loaded;
use serde_json::json;

/// Runs one `requests` subcommand.
pub fn run(loaded: &Loaded, cmd: RequestsCommand) -> Exit {
    if let RequestsCommand::Delete { yes: false, .. } = cmd {
        eprintln!("error: delete removes the request and its registered user from the API and cannot be undone;");
        eprintln!("       it is not a rejection. Add --yes to confirm.");
        return Exit::Usage;
    }
    let conn = match connect(loaded) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let api = &conn.client;
    match cmd {
        RequestsCommand::List { accepted, out } => {
            let lists: Vec<bool> = match accepted {
                Some(a) => vec![a],
                None => vec![false, true],
            };
            let mut all = Vec::new();
            for a in lists {
                match api.list_requests(a) {
                    Ok(mut r) => all.append(&mut r),
                    Err(e) => return fail(&e, out.json),
                }
            }
            if out.json {
                print_json(&json!({ "requests": all }));
            } else if all.is_empty() {
                println!("no requests");
            } else {
                println!("{:<38} {:<9} {:<9} {:>6}  {:<30} phone", "id", "validated", "accepted", "score", "email");
                for r in &all {
                    println!(
                        "{:<38} {:<9} {:<9} {:>6}  {:<30} {}",
                        r.id,
                        yes_no(r.is_validated),
                        yes_no(r.is_accepted),
                        r.face_match.map(|s| format!("{s:.3}")).unwrap_or_else(|| "-".into()),
                        r.email,
                        r.phone_number
                    );
                }
            }
            Exit::Done
        }
        RequestsCommand::Show { id, out } => match api.get_request(&id) {
            Ok(r) => {
                if out.json {
                    print_json(&json!({ "request": r }));
                } else {
                    print_request(&r);
                }
                Exit::Done
            }
            Err(e) => fail(&e, out.json),
        },
        RequestsCommand::Accept { id, out } => match api.accept_request(&id) {
            Ok(()) => {
                if out.json {
                    print_json(&json!({ "accepted": id, "error": null }));
                } else {
                    println!("accepted {id}");
                }
                Exit::Done
            }
            Err(e) => fail(&e, out.json),
        },
        RequestsCommand::Delete { id, out, .. } => match api.delete_request(&id) {
            Ok(()) => {
                if out.json {
                    print_json(&json!({ "deleted": id, "error": null }));
                } else {
                    println!("deleted {id}");
                }
                Exit::Done
            }
            Err(e) => fail(&e, out.json),
        },
    }
}

fn fail(err: &ApiError, json_out: bool) -> Exit {
    log::warn!("requests command failed: {}", err.code());
    if json_out {
        print_json(&json!({ "error": error_json(err) }));
    } else {
        print_error_human(err);
    }
    exit_for(err)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_request(r: &KycRequest) {
    println!("id:         {}", r.id);
    println!("email:      {}", r.email);
    println!("phone:      {}", r.phone_number);
    println!("validated:  {}", yes_no(r.is_validated));
    println!("accepted:   {}", yes_no(r.is_accepted));
    if let Some(s) = r.face_match {
        println!("face match: {s:.3}");
    }
    if let Some(obj) = r.id_information.as_object() {
        println!("document:");
        for (k, v) in obj {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("  {k}: {v}");
        }
    }
}
