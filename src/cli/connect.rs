//! Connecting a command to the API: the configured Lapis API, or, in demo mode only, the built-in sandbox when no
//! `api.base_url` is set (started in-process on a loopback port; the command says so). Outside demo mode a missing
//! API is a configuration error: a production kiosk never sends to a stand-in. Also the shared rendering of an API
//! error for `--json` output and its exit code. Main thread.

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

/// Why a production configuration has no API to send to.
pub(crate) const NO_API: &str = "no API is configured: set api.base_url (EKYC_API_BASE_URL) and this kiosk's \
     certificate for the bank's gateway (api.client_cert_file, api.client_key_file), or the API key (api.key_file or \
     EKYC_API_KEY). This configuration is not a demo (a config file or an api.* setting is \
     present), so the built-in sandbox is not used; run with --demo (or demo.enabled = true) to try the product \
     against it.";

/// Whether this configuration has an API to send to: its own, or in demo mode the built-in sandbox. Checked before
/// anything is saved, so a production kiosk without an API refuses an application instead of queueing one it can
/// never send.
pub(crate) fn check_api(loaded: &Loaded) -> Result<(), String> {
    match (&loaded.config.api.base_url, &loaded.api_key) {
        (Some(_), Some(_)) => Ok(()),
        (Some(_), None) if loaded.tls.has_client_cert() => Ok(()),
        (Some(_), None) => Err("api.base_url is set but no credential is configured (api.client_cert_file or the \
                                API key)"
            .into()),
        (None, Some(_)) => Err("an API key is configured but api.base_url is not set: set api.base_url".into()),
        (None, None) if loaded.mode.is_demo() => Ok(()),
        (None, None) => Err(NO_API.into()),
    }
}

/// Builds the client for the configured API, or in demo mode starts the embedded sandbox and points the client at
/// it (`Sandbox::start_embedded` logs that it is in use, with its address).
pub(crate) fn client_for(loaded: &Loaded) -> Result<(ApiClient, Option<Sandbox>), String> {
    let cfg = &loaded.config;
    check_api(loaded)?;
    let client = match &cfg.api.base_url {
        Some(url) => {
            let tls = loaded.tls.clone();
            ApiClient::with_credentials(&cfg.api, &cfg.face_match, url.clone(), loaded.api_key.clone(), tls)
        }
        None => {
            let sb = Sandbox::start_embedded(cfg).map_err(|e| format!("cannot start the built-in sandbox: {e}"))?;
            let client = ApiClient::new(&cfg.api, &cfg.face_match, sb.base_url(), sb.api_key().clone())
                .map_err(|e| e.to_string())?;
            return Ok((client, Some(sb)));
        }
    };
    Ok((client.map_err(|e| e.to_string())?, None))
}

/// [`client_for`], printing the error for a command.
pub fn connect(loaded: &Loaded) -> Result<Connection, Exit> {
    match client_for(loaded) {
        Ok((client, sandbox)) => Ok(Connection { client, _embedded: sandbox }),
        Err(e) => {
            eprintln!("error: {e}");
            Err(Exit::Fatal)
        }
    }
}

/// The exit code for an API error.
pub fn exit_for(err: &ApiError) -> Exit {
    match err.class() {
        ErrorClass::CustomerMustAct => Exit::CustomerMustAct,
        ErrorClass::Fatal => Exit::Fatal,
        // Retrying later may work: not the "configuration or fatal" code.
        ErrorClass::Transient | ErrorClass::Ambiguous => Exit::Transient,
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
