//! Connecting a command to the API: the configured Lapis API, or the built-in sandbox when no `api.base_url` is
//! set (started in-process on a loopback port; the command says so). Also the shared rendering of an API error
//! for `--json` output and its exit code. Main thread.

use super::Exit;
use crate::api::{ApiClient, ApiError, ErrorClass};
use crate::config::Loaded;
use crate::sandbox::Sandbox;
use serde_json::json;

/// A client plus the sandbox it talks to when the sandbox is the embedded default (kept alive with the client).
pub struct Connection {
    /// The API client.
    pub client: ApiClient,
    /// The embedded sandbox, when no API is configured: held so it runs as long as the client is used.
    _embedded: Option<Sandbox>,
}

/// Builds the client for the configured API, or starts the embedded sandbox and points the client at it.
pub fn connect(loaded: &Loaded) -> Result<Connection, Exit> {
    let cfg = &loaded.config;
    match (&cfg.api.base_url, &loaded.api_key) {
        (Some(url), Some(key)) => {
            let client = ApiClient::new(&cfg.api, &cfg.face_match, url.clone(), key.clone()).map_err(|e| {
                eprintln!("error: {e}");
                Exit::Fatal
            })?;
            Ok(Connection { client, _embedded: None })
        }
        (Some(_), None) => {
            eprintln!("error: api.base_url is set but no API key is configured (api.key_file or EKYC_API_KEY)");
            Err(Exit::Fatal)
        }
        (None, _) => {
            let sandbox = Sandbox::start_embedded(cfg).map_err(|e| {
                eprintln!("error: cannot start the built-in sandbox: {e}");
                Exit::Fatal
            })?;
            // Sandbox::start_embedded logs that the built-in sandbox is in use, with its address.
            let client = ApiClient::new(&cfg.api, &cfg.face_match, sandbox.base_url(), sandbox.api_key().clone())
                .map_err(|e| {
                    eprintln!("error: {e}");
                    Exit::Fatal
                })?;
            Ok(Connection { client, _embedded: Some(sandbox) })
        }
    }
}

/// The exit code for an API error.
pub fn exit_for(err: &ApiError) -> Exit {
    match err.class() {
        ErrorClass::CustomerMustAct => Exit::CustomerMustAct,
        ErrorClass::Fatal | ErrorClass::Transient | ErrorClass::Ambiguous => Exit::Fatal,
    }
}

/// The `error` object of the CLI's JSON output.
pub fn error_json(err: &ApiError) -> serde_json::Value {
    let prompt = err.prompt();
    json!({
        "code": err.code().as_str(),
        "step": err.endpoint().map(|e| e.step()),
        "http_status": err.http_status(),
        "message": prompt.message,
        "title": prompt.title,
        "action": prompt.action.as_str(),
        "class": err.class().as_str(),
        "detail": err.to_string(),
    })
}

/// Prints an API error for a human: the customer-facing title and message, then the operator's explanation.
pub fn print_error_human(err: &ApiError) {
    let p = err.prompt();
    eprintln!("error [{}]: {}", err.code(), err);
    eprintln!("  customer sees: {} — {}", p.title, p.message);
    eprintln!("  action: {}", p.action.as_str());
    eprintln!("  operator: {}", p.operator);
}
