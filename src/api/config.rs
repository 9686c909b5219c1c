//! The `[api]` and `[face_match]` configuration sections: where the API is, how long to wait, and every value that
//! guesses at the vendor's behaviour (paths, field names, prefixes), each defaulting to the contract's section 7.
//! Plain data, read by whichever thread builds an `ApiClient`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// `[api]`: the Lapis eKYC API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Base URL, e.g. `https://kyc-be.rubilink.app`. Unset: the built-in sandbox is started on a loopback port.
    /// `https` is required except for loopback hosts.
    pub base_url: Option<Url>,
    /// File holding the API key (mode 0600 or stricter). `EKYC_API_KEY` takes precedence. Not needed (and best
    /// left unset) when the kiosk talks to the bank's gateway with its own certificate (`client_cert_file`): the
    /// gateway holds the key.
    pub key_file: Option<PathBuf>,
    /// PEM certificate (and chain) this kiosk presents to the gateway. Set together with `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file` (mode 0600 or stricter). Unset with a certificate configured: the
    /// systemd credential `ekyc-client-key` (`$CREDENTIALS_DIRECTORY/ekyc-client-key`).
    pub client_key_file: Option<PathBuf>,
    /// PEM file of the only CA(s) trusted for the API's (the gateway's) server certificate. Unset: the public web
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// Deadline for the TCP (and TLS) connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Deadline for the response headers once the body has been sent.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Overall deadline for one upload call (E1 document, E2 face, E3 liveness): OCR and matching are slow.
    #[serde(with = "humantime_serde")]
    pub upload_timeout: Duration,
    /// Overall deadline for one call to the other endpoints (E4 to E9).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest response body read; anything longer is an `unexpected_response`.
    pub max_response_bytes: u64,
    /// Prefix base64 images with `data:image/jpeg;base64,` (the vendor docs are silent; default off).
    pub data_uri_prefix: bool,
    /// How phone numbers are sent: `digits` (country code, no `+`, as in the vendor sample) or `e164` (with `+`).
    pub phone_format: PhoneFormat,
    /// Whether the liveness step (E3) runs. Off: the vendor marks the endpoint as under rework.
    pub liveness_enabled: bool,
    /// Endpoint paths.
    pub paths: ApiPaths,
    /// JSON field names of the uploads.
    pub fields: ApiFields,
}

/// How phone numbers go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneFormat {
    /// Country code and number, digits only: `251999678350`.
    Digits,
    /// E.164 with a leading plus: `+251999678350`.
    E164,
}

/// `[api.paths]`: every endpoint path. `{id}` in `show` is replaced by the percent-encoded request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiPaths {
    /// E1, upload the ID document.
    pub document: String,
    /// E2, face match.
    pub face: String,
    /// E3, liveness video (used only when `liveness_enabled`).
    pub liveness: String,
    /// E4, create the eKYC request.
    pub create_request: String,
    /// E5, accept a request.
    pub accept: String,
    /// E6, list requests (`?accepted=true|false` is appended).
    pub list: String,
    /// E7, one request; `{id}` is replaced.
    pub show: String,
    /// E9, delete a request.
    pub delete: String,
    /// The gateway's health route, answered by the gateway itself (never the vendor): the connection check of a
    /// kiosk with a client certificate.
    pub health: String,
}

/// `[api.fields]`: JSON field names for the base64 uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiFields {
    /// Front of the document.
    pub front: String,
    /// Back of the document.
    pub back: String,
    /// Third ("side") image of the document.
    pub side: String,
    /// The face photo.
    pub face: String,
    /// The liveness clip.
    pub liveness: String,
}

/// `[face_match]`: client-side policy on the face-match score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FaceMatchConfig {
    /// Treat a 200 whose `score` is below this as `face_mismatch`. Unset: trust the server's decision.
    pub min_score: Option<f64>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_url: None,
            key_file: None,
            client_cert_file: None,
            client_key_file: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(90),
            upload_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 1024 * 1024,
            data_uri_prefix: false,
            phone_format: PhoneFormat::Digits,
            liveness_enabled: false,
            paths: ApiPaths::default(),
            fields: ApiFields::default(),
        }
    }
}

impl Default for ApiPaths {
    fn default() -> Self {
        ApiPaths {
            document: "/api/document-authentication".into(),
            face: "/api/face-authentication".into(),
            liveness: "/api/liveness-verification".into(),
            create_request: "/api/kyc-request".into(),
            accept: "/api/accept".into(),
            list: "/api/requests".into(),
            show: "/api/requests/{id}".into(),
            delete: "/api/delete-request".into(),
            health: "/healthz".into(),
        }
    }
}

impl Default for ApiFields {
    fn default() -> Self {
        ApiFields {
            front: "frontImage_base64".into(),
            back: "backImage_base64".into(),
            side: "sideImage_base64".into(),
            face: "faceImage_base64".into(),
            liveness: "faceVideo_base64".into(),
        }
    }
}

/// Whether a URL's host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl ApiConfig {
    /// Checks what types alone cannot: the scheme rule, positive deadlines, sane paths. Errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.base_url {
            // First, and without quoting the URL: a password in it must not reach `config`, an error or a log.
            if !url.username().is_empty() || url.password().is_some() {
                return Err("api.base_url: must not carry a user name or password (the API key goes in \
                            api.key_file or EKYC_API_KEY)"
                    .into());
            }
            match url.scheme() {
                "https" => {}
                "http" if is_loopback(url) => {}
                "http" => {
                    return Err(format!(
                        "api.base_url: `{url}` uses http to a host that is not loopback; https is required"
                    ));
                }
                other => return Err(format!("api.base_url: unsupported scheme `{other}`")),
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err("api.base_url: must not carry a query or fragment".into());
            }
        }
        for (key, d) in [
            ("api.connect_timeout", self.connect_timeout),
            ("api.response_timeout", self.response_timeout),
            ("api.upload_timeout", self.upload_timeout),
            ("api.request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{key}: must be longer than zero"));
            }
        }
        if self.max_response_bytes < 1024 {
            return Err("api.max_response_bytes: must be at least 1024".into());
        }
        let p = &self.paths;
        for (key, path) in [
            ("api.paths.document", &p.document),
            ("api.paths.face", &p.face),
            ("api.paths.liveness", &p.liveness),
            ("api.paths.create_request", &p.create_request),
            ("api.paths.accept", &p.accept),
            ("api.paths.list", &p.list),
            ("api.paths.show", &p.show),
            ("api.paths.delete", &p.delete),
            ("api.paths.health", &p.health),
        ] {
            if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
                return Err(format!("{key}: `{path}` must start with / and hold no query, fragment or space"));
            }
        }
        if self.client_key_file.is_some() && self.client_cert_file.is_none() {
            return Err("api.client_key_file: is set but api.client_cert_file is not; set both".into());
        }
        if !p.show.contains("{id}") {
            return Err("api.paths.show: must contain {id}".into());
        }
        let f = &self.fields;
        for (key, name) in [
            ("api.fields.front", &f.front),
            ("api.fields.back", &f.back),
            ("api.fields.side", &f.side),
            ("api.fields.face", &f.face),
            ("api.fields.liveness", &f.liveness),
        ] {
            if name.is_empty() || name.contains(['"', '\\']) || name.chars().any(char::is_control) {
                return Err(format!("{key}: `{name}` is not a usable JSON field name"));
            }
        }
        Ok(())
    }
}

impl FaceMatchConfig {
    /// The score must be in 0..=1 when set.
    pub fn validate(&self) -> Result<(), String> {
        match self.min_score {
            Some(s) if !(0.0..=1.0).contains(&s) => Err(format!("face_match.min_score: {s} is not between 0 and 1")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_base_url_are_refused_without_being_quoted() {
        for url in ["https://ops:hunter2secret@kyc.example.com/", "https://hunter2secret@kyc.example.com/"] {
            let cfg = ApiConfig { base_url: Some(url.parse().unwrap()), ..ApiConfig::default() };
            let e = cfg.validate().unwrap_err();
            assert!(e.contains("user name or password"), "{e}");
            assert!(!e.contains("hunter2secret") && !e.contains("ops"), "{e}");
        }
        let ok = ApiConfig { base_url: Some("https://kyc.example.com/".parse().unwrap()), ..ApiConfig::default() };
        assert!(ok.validate().is_ok());
    }
}
