//! Layered configuration: built-in defaults, then a TOML file (`--config FILE`), then `EKYC_*` environment
//! variables. Loaded once on the main thread at start; the typed [`Config`] is then cloned into each worker.
//!
//! Every key has an environment variable: `EKYC_` followed by its dotted path in upper case with `_` for the dots
//! (`api.base_url` is `EKYC_API_BASE_URL`, `api.paths.show` is `EKYC_API_PATHS_SHOW`). Two more: `EKYC_DATA_DIR`
//! for `storage.data_dir`, and `EKYC_API_KEY`, the key itself. Values are typed when loaded (URLs, durations such
//! as `30s`, paths), and a bad value is an error that names the key and where the value came from. The API key
//! never appears in this module's output or errors.

use crate::api::{ApiConfig, FaceMatchConfig};
use crate::secret::{ApiKey, StaffPin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The systemd credential holding the API key (`$CREDENTIALS_DIRECTORY/ekyc-api-key`), used when `api.key_file` is
/// unset and `EKYC_API_KEY` is not set.
pub const API_KEY_CREDENTIAL: &str = "ekyc-api-key";
/// The systemd credential holding the staff PIN, used when `kiosk.staff_pin_file` is unset.
pub const STAFF_PIN_CREDENTIAL: &str = "ekyc-staff-pin";

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The whole configuration. Each section lives with the module that uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[api]`: the Lapis API.
    pub api: ApiConfig,
    /// `[face_match]`: client-side face-match policy.
    pub face_match: FaceMatchConfig,
    /// `[storage]`: where the product writes.
    pub storage: StorageConfig,
    /// `[camera]`: which camera and how it is opened.
    pub camera: crate::camera::CameraConfig,
    /// `[capture]`: on-device quality checks and auto-capture.
    pub capture: crate::capture::CaptureConfig,
    /// `[encode]`: JPEG encoding to a size budget.
    pub encode: crate::encode::EncodeConfig,
    /// `[queue]`: the durable queue's bounds and retention.
    pub queue: crate::queue::QueueConfig,
    /// `[uploader]`: retries and backoff.
    pub uploader: crate::uploader::UploaderConfig,
    /// `[sandbox]`: the built-in sandbox API.
    pub sandbox: crate::sandbox::SandboxConfig,
    /// `[kiosk]`: the customer window and the flow's timing and attempt policy.
    pub kiosk: crate::view::KioskConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[metrics]`: the node_exporter textfile for fleet monitoring.
    pub metrics: crate::metrics::MetricsConfig,
    /// `[demo]`: whether the product runs as a demo.
    pub demo: DemoConfig,
}

/// `[demo]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Run as a demo: the built-in sandbox API when no `api.base_url` is set, the bundled demo pictures when
    /// `camera.source = auto` finds no camera, a windowed kiosk. Unset: a demo only when nothing is configured (no
    /// config file, no `api.*` setting, no API key). `false`: never a demo, even with nothing configured. The
    /// `--demo` flag sets it to `true`.
    pub enabled: Option<bool>,
}

/// Whether the product runs as a demo or for real; decided once when the configuration is loaded. Demo stand-ins
/// (the embedded sandbox, the demo camera) are only ever used in [`RunMode::Demo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// A demo, because nothing is configured or because it was asked for.
    Demo {
        /// True when asked for (`--demo`, `demo.enabled`), false when nothing is configured.
        asked: bool,
    },
    /// A real kiosk: the configured API and a real camera, or nothing.
    Production,
}

impl RunMode {
    /// True in demo mode.
    pub fn is_demo(self) -> bool {
        matches!(self, RunMode::Demo { .. })
    }

    /// One line for `config`, the logs and errors.
    pub fn describe(self) -> &'static str {
        match self {
            RunMode::Demo { asked: true } => "demo (asked for with --demo or demo.enabled)",
            RunMode::Demo { asked: false } => "demo (nothing is configured: no config file, no api.* setting, no key)",
            RunMode::Production => "production (the configured API and a real camera; no sandbox, no demo pictures)",
        }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory for everything the product writes (queue database, keys, logs). Created mode 0700 if missing.
    /// Default: `$XDG_DATA_HOME/ekyc-kiosk`, else `~/.local/share/ekyc-kiosk`.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { data_dir: default_data_dir() }
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("ekyc-kiosk");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/ekyc-kiosk");
    }
    PathBuf::from("ekyc-data")
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Default level filter (`error`, `warn`, `info`, `debug`, `trace`, or an env_logger spec such as
    /// `info,ekyc_kiosk::api=debug`). `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into() }
    }
}

/// Where the API key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `EKYC_API_KEY`.
    Env,
    /// `api.key_file`.
    File(PathBuf),
    /// No key configured.
    None,
}

/// A loaded configuration with its secrets and provenance.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    /// The API key, if one is configured.
    pub api_key: Option<ApiKey>,
    /// Where the key came from.
    pub key_source: KeySource,
    /// The kiosk's client certificate and the gateway's CA (`api.client_cert_file`, `api.client_key_file` or the
    /// systemd credential, `api.ca_file`), checked when loaded.
    pub tls: crate::api::TlsFiles,
    /// The staff PIN that opens the operator console on the kiosk (`EKYC_STAFF_PIN` or `kiosk.staff_pin_file`).
    pub staff_pin: Option<StaffPin>,
    /// For each key set by the file or the environment, where its value came from (`file`, or the variable's name).
    pub sources: BTreeMap<String, String>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Demo or production.
    pub mode: RunMode,
}

/// Why the configuration could not be loaded. Messages name the key and never contain a secret.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The configuration file is larger than any sane configuration.
    #[error("config file {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// The configuration file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A key has a value of the wrong type or form, or is unknown.
    #[error("config key `{key}` (from {origin}): {message}")]
    Value { key: String, origin: String, message: String },
    /// A value is well-formed but not acceptable (the message starts with the key).
    #[error("{0}")]
    Invalid(String),
    /// The key file could not be used.
    #[error("api key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    /// The client certificate, its key or the CA file could not be used.
    #[error(transparent)]
    Tls(#[from] crate::api::TlsFileError),
    /// The staff PIN (its file, or `EKYC_STAFF_PIN`) could not be used. Never contains the PIN.
    #[error("staff pin {origin}: {reason}")]
    StaffPin { origin: String, reason: String },
}

/// Loads the configuration from the real environment.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    load_with_overrides(file, &[])
}

/// Loads the configuration from the real environment, then applies `overrides` as if they were `EKYC_*`
/// variables set last (command-line flags such as `--camera` use this, so their values are typed and checked the
/// same way).
pub fn load_with_overrides(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Loaded, ConfigError> {
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("EKYC_")).collect();
    env.extend_from_slice(overrides);
    load_with_env(file, &env)
}

/// Loads the configuration with the given `EKYC_*` variables (tests pass their own).
pub fn load_with_env(file: Option<&Path>, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
    let defaults = toml::Table::try_from(Config::default())
        .map_err(|e| ConfigError::Invalid(format!("built-in defaults do not serialize: {e}")))?;
    let mut merged = defaults.clone();
    let mut sources = BTreeMap::new();

    if let Some(path) = file {
        let text = read_bounded(path)?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        merge_tables(&mut merged, table, "", &mut sources, "file");
    }

    let mut api_key_env = None;
    let mut staff_pin_env = None;
    for (name, raw) in env {
        match name.as_str() {
            "EKYC_API_KEY" => {
                api_key_env = Some(ApiKey::new(raw));
                continue;
            }
            "EKYC_STAFF_PIN" => {
                staff_pin_env = Some(zeroize::Zeroizing::new(raw.clone()));
                continue;
            }
            "EKYC_DATA_DIR" => {
                set_path(&mut merged, &["storage", "data_dir"], toml::Value::String(raw.clone()));
                sources.insert("storage.data_dir".into(), name.clone());
                continue;
            }
            _ => {}
        }
        let Some(rest) = name.strip_prefix("EKYC_") else { continue };
        match resolve_env_key(&defaults, &rest.to_ascii_lowercase()) {
            Some(path) => {
                let default_leaf = get_path(&defaults, &path);
                let value = typed_env_value(raw, default_leaf);
                let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                set_path(&mut merged, &refs, value);
                sources.insert(path.join("."), name.clone());
            }
            None => log::warn!("ignoring environment variable {name}: it names no configuration key"),
        }
    }

    let config: Config = {
        let de = toml::Value::Table(merged);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let origin = sources
                .get(&key)
                .cloned()
                .unwrap_or_else(|| if file.is_some() { "the config file".into() } else { "the defaults".into() });
            let origin = if origin == "file" { "the config file".into() } else { origin };
            // The deserializer appends "in `key`" on a second line; the key is already named.
            let message = e.into_inner().to_string().lines().next().unwrap_or_default().trim().to_string();
            ConfigError::Value { key, origin, message }
        })?
    };
    config.api.validate().map_err(ConfigError::Invalid)?;
    config.face_match.validate().map_err(ConfigError::Invalid)?;
    config.validate_sections().map_err(ConfigError::Invalid)?;

    // Under systemd, the secrets may come as credentials (`LoadCredential=`, `LoadCredentialEncrypted=`):
    // `$CREDENTIALS_DIRECTORY/ekyc-api-key` and `ekyc-staff-pin`, used when no file is configured.
    let credential = |name: &str| {
        env.iter()
            .find(|(k, _)| k == "CREDENTIALS_DIRECTORY")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("CREDENTIALS_DIRECTORY").ok())
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(&d).join(name))
            .filter(|p| p.is_file())
    };
    let mut config = config;
    if config.api.key_file.is_none() {
        config.api.key_file = credential(API_KEY_CREDENTIAL);
    }
    if config.kiosk.staff_pin_file.is_none() {
        config.kiosk.staff_pin_file = credential(STAFF_PIN_CREDENTIAL);
    }
    let (api_key, key_source) = match (api_key_env, &config.api.key_file) {
        (Some(k), _) if !k.is_empty() => (Some(k), KeySource::Env),
        (Some(_), _) => return Err(ConfigError::Invalid("EKYC_API_KEY: is set but empty".into())),
        (None, Some(path)) => (Some(read_key_file(path)?), KeySource::File(path.clone())),
        (None, None) => (None, KeySource::None),
    };
    // systemd's `LoadCredential[Encrypted]=` may hold the kiosk's private key.
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let tls = crate::api::TlsFiles::from_config(&config.api, credentials.as_deref())?;
    // Read and checked now, so that a bad file stops the start with a message naming it.
    tls.load()?;
    if api_key.is_none() && !tls.has_client_cert() && config.api.base_url.is_some() {
        return Err(ConfigError::Invalid(
            "api.base_url is set but no credential is configured: set api.client_cert_file and api.client_key_file \
             (a kiosk behind the bank's gateway), or the API key (api.key_file or EKYC_API_KEY)"
                .into(),
        ));
    }
    if tls.has_client_cert() && config.api.base_url.is_none() {
        return Err(ConfigError::Invalid(
            "api.base_url: a client certificate is configured (api.client_cert_file) but api.base_url is not set; \
             set it to the bank's gateway"
                .into(),
        ));
    }
    if api_key.is_some() && config.api.base_url.is_none() {
        // A key means a real API was meant: sending to the built-in sandbox instead would tell customers their
        // application was accepted when it went nowhere.
        let from = match &key_source {
            KeySource::Env => "EKYC_API_KEY".to_string(),
            KeySource::File(p) => format!("api.key_file ({})", p.display()),
            KeySource::None => "the API key".to_string(),
        };
        return Err(ConfigError::Invalid(format!(
            "api.base_url: an API key is configured ({from}) but api.base_url is not set; set api.base_url \
             (EKYC_API_BASE_URL) to the API the key belongs to. The built-in sandbox is only for demos."
        )));
    }
    let nothing_configured =
        file.is_none() && api_key.is_none() && !sources.keys().any(|k| k.starts_with("api.") || k == "demo.enabled");
    let mode = match config.demo.enabled {
        Some(true) => RunMode::Demo { asked: true },
        Some(false) => RunMode::Production,
        None if nothing_configured => RunMode::Demo { asked: false },
        None => RunMode::Production,
    };
    config.camera.demo_fallback = mode.is_demo();

    let staff_pin = match (staff_pin_env, &config.kiosk.staff_pin_file) {
        (Some(raw), _) => Some(
            StaffPin::parse(&raw)
                .map_err(|reason| ConfigError::StaffPin { origin: "from EKYC_STAFF_PIN".into(), reason })?,
        ),
        (None, Some(path)) => {
            let origin = format!("file {}", path.display());
            let text = read_secret_file(path, "staff pin")
                .map_err(|reason| ConfigError::StaffPin { origin: origin.clone(), reason })?;
            Some(StaffPin::parse(&text).map_err(|reason| ConfigError::StaffPin { origin, reason })?)
        }
        (None, None) => None,
    };

    Ok(Loaded { config, api_key, key_source, tls, staff_pin, sources, file: file.map(Path::to_owned), mode })
}

impl Config {
    fn validate_sections(&self) -> Result<(), String> {
        if self.storage.data_dir.as_os_str().is_empty() {
            return Err("storage.data_dir: must not be empty".into());
        }
        self.sandbox.validate()?;
        self.camera.validate().map_err(|e| e.to_string())?;
        self.capture.validate().map_err(|e| e.to_string())?;
        self.encode.validate().map_err(|e| e.to_string())?;
        self.kiosk.validate()?;
        self.metrics.validate()?;
        Ok(())
    }
}

impl Loaded {
    /// The effective configuration as commented TOML, secrets redacted (for `ekyc-kiosk config`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# effective configuration: built-in defaults");
        if let Some(f) = &self.file {
            out.push_str(&format!(", then {}", f.display()));
        }
        out.push_str(", then EKYC_* environment variables\n");
        out.push_str(&format!("# run mode: {}\n", self.mode.describe()));
        let key = match &self.key_source {
            KeySource::Env => "set from EKYC_API_KEY (redacted)".to_string(),
            KeySource::File(p) => format!("read from {} (redacted)", p.display()),
            KeySource::None if self.config.api.base_url.is_none() && self.mode.is_demo() => {
                "none (the built-in sandbox generates its own)".to_string()
            }
            KeySource::None => "none".to_string(),
        };
        out.push_str(&format!("# api key: {key}\n"));
        if let (Some(cert), Some(key)) = (&self.tls.client_cert, &self.tls.client_key) {
            out.push_str(&format!(
                "# client certificate: {} with its key in {} (the gateway holds the API key)\n",
                cert.display(),
                key.display()
            ));
        }
        let pin = if self.staff_pin.is_some() { "set (redacted)" } else { "none (the kiosk has no operator screen)" };
        out.push_str(&format!("# staff pin: {pin}\n"));
        match (&self.config.api.base_url, self.mode.is_demo()) {
            (Some(_), _) => {}
            (None, true) => {
                out.push_str("# api.base_url is unset: commands that need the API start the built-in sandbox\n")
            }
            (None, false) => out
                .push_str("# api.base_url is unset and this is not a demo: commands that need the API refuse to run\n"),
        }
        for (k, src) in &self.sources {
            let src = if src == "file" { "the config file" } else { src.as_str() };
            out.push_str(&format!("# {k} set by {src}\n"));
        }
        out.push('\n');
        match toml::to_string(&self.config) {
            Ok(s) => out.push_str(&s),
            Err(e) => out.push_str(&format!("# cannot render: {e}\n")),
        }
        out
    }
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { path: path.to_owned() });
    }
    Ok(text)
}

/// Reads the API key file, refusing one that group or others can read.
fn read_key_file(path: &Path) -> Result<ApiKey, ConfigError> {
    let err = |reason: String| ConfigError::KeyFile { path: path.to_owned(), reason };
    let text = read_secret_file(path, "key").map_err(err)?;
    let key = ApiKey::new(&text);
    if key.is_empty() {
        return Err(err("is empty".into()));
    }
    if key.expose().chars().any(|c| c.is_control() || c == ' ') {
        return Err(err("holds white space or control characters inside the key".into()));
    }
    Ok(key)
}

/// Reads a small secret file (`what` names the secret in the messages), refusing one that group or others can
/// read. The error is the reason only; the caller names the file.
fn read_secret_file(path: &Path, what: &str) -> Result<zeroize::Zeroizing<String>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "is readable by group or others (mode {mode:04o}); a leaked {what} lets anyone act as this kiosk. \
                 Run `chmod 600 {}`",
                path.display()
            ));
        }
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    f.take(4097).read_to_string(&mut text).map_err(|e| format!("cannot read: {e}"))?;
    if text.len() > 4096 {
        return Err(format!("is larger than 4096 bytes; it should hold only the {what}"));
    }
    Ok(text)
}

fn merge_tables(
    into: &mut toml::Table,
    from: toml::Table,
    prefix: &str,
    sources: &mut BTreeMap<String, String>,
    origin: &str,
) {
    for (k, v) in from {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src)) => merge_tables(dst, src, &path, sources, origin),
            (_, v) => {
                sources.insert(path, origin.to_string());
                into.insert(k, v);
            }
        }
    }
}

/// Maps the lower-cased remainder of an `EKYC_` variable to a key path, descending into sub-tables of the
/// defaults greedily (`api_paths_show` -> `api.paths.show`). Keys not present in the defaults (optional ones such
/// as `api.base_url`) resolve to a leaf in the deepest matching table.
fn resolve_env_key(defaults: &toml::Table, rest: &str) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut table = defaults;
    let mut remaining = rest.to_string();
    loop {
        // The longest sub-table name that prefixes what remains.
        let next = table
            .iter()
            .filter_map(|(k, v)| v.as_table().map(|t| (k, t)))
            .filter(|(k, _)| remaining.starts_with(&format!("{k}_")))
            .max_by_key(|(k, _)| k.len());
        match next {
            Some((k, t)) => {
                remaining = remaining[k.len() + 1..].to_string();
                path.push(k.clone());
                table = t;
            }
            None => break,
        }
    }
    if path.is_empty() || remaining.is_empty() {
        return None;
    }
    path.push(remaining);
    Some(path)
}

fn typed_env_value(raw: &str, default: Option<&toml::Value>) -> toml::Value {
    let parsed =
        || format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")).filter(|v| !v.is_str());
    match default {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
        Some(_) => parsed().unwrap_or_else(|| toml::Value::String(raw.to_string())),
        // An optional key with no default: a number, boolean or array when it reads as one, else a string.
        None => parsed().unwrap_or_else(|| toml::Value::String(raw.to_string())),
    }
}

fn get_path<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (last, init) = path.split_last()?;
    let mut t = table;
    for k in init {
        t = t.get(k)?.as_table()?;
    }
    t.get(last)
}

fn set_path(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    let Some((last, init)) = path.split_last() else { return };
    let mut t = table;
    for k in init {
        let entry = t.entry(k.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        match entry {
            toml::Value::Table(next) => t = next,
            // Replaced by a table just above.
            _ => return,
        }
    }
    t.insert(last.to_string(), value);
}

/// Every key the configuration knows, as dotted paths: the defaults' leaves plus the optional keys that have no
/// default value. Used to check that `assets/kiosk.example.toml` documents every key.
pub fn known_keys() -> Vec<String> {
    let mut keys = Vec::new();
    if let Ok(t) = toml::Table::try_from(Config::default()) {
        collect_leaves(&t, "", &mut keys);
    }
    keys.extend(OPTIONAL_KEYS.iter().map(|s| s.to_string()));
    keys.sort();
    keys
}

/// Keys whose default is "unset", so they do not appear when the defaults are serialized.
pub const OPTIONAL_KEYS: &[&str] = &[
    "api.base_url",
    "api.key_file",
    "api.client_cert_file",
    "api.client_key_file",
    "api.ca_file",
    "face_match.min_score",
    "kiosk.staff_pin_file",
    "demo.enabled",
    "metrics.textfile",
];

fn collect_leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(sub) => collect_leaves(sub, &path, out),
            _ => out.push(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
        p
    }

    #[test]
    fn defaults_load_and_point_at_the_sandbox() {
        let l = load_with_env(None, &env(&[("EKYC_DATA_DIR", "/tmp/x")])).unwrap();
        assert!(l.config.api.base_url.is_none());
        assert!(l.api_key.is_none());
        assert_eq!(l.config.storage.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(l.config.api.paths.show, "/api/requests/{id}");
    }

    #[test]
    fn file_then_env_layering_with_types() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "k.toml",
            "[api]\nbase_url = \"https://kyc.example.com\"\nconnect_timeout = \"3s\"\n[api.paths]\nshow = \"/api/request/{id}\"\n",
        );
        let l = load_with_env(
            Some(&f),
            &env(&[
                ("EKYC_API_KEY", "k1"),
                ("EKYC_API_CONNECT_TIMEOUT", "7s"),
                ("EKYC_API_MAX_RESPONSE_BYTES", "4096"),
                ("EKYC_API_DATA_URI_PREFIX", "true"),
                ("EKYC_FACE_MATCH_MIN_SCORE", "0.8"),
            ]),
        )
        .unwrap();
        assert_eq!(l.config.api.base_url.as_ref().unwrap().as_str(), "https://kyc.example.com/");
        assert_eq!(l.config.api.connect_timeout, std::time::Duration::from_secs(7));
        assert_eq!(l.config.api.max_response_bytes, 4096);
        assert!(l.config.api.data_uri_prefix);
        assert_eq!(l.config.api.paths.show, "/api/request/{id}");
        assert_eq!(l.config.face_match.min_score, Some(0.8));
        assert_eq!(l.key_source, KeySource::Env);
        assert_eq!(l.sources.get("api.connect_timeout").map(String::as_str), Some("EKYC_API_CONNECT_TIMEOUT"));
    }

    #[test]
    fn bad_values_name_the_key_and_origin() {
        let e = load_with_env(None, &env(&[("EKYC_API_CONNECT_TIMEOUT", "soon")])).unwrap_err().to_string();
        assert!(e.contains("api.connect_timeout") && e.contains("EKYC_API_CONNECT_TIMEOUT"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "k.toml", "[api]\nbase_url = \"not a url\"\n");
        let e = load_with_env(Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("api.base_url") && e.contains("config file"), "{e}");

        let f = write(dir.path(), "u.toml", "[api]\nbase_uri = \"https://x\"\n");
        let e = load_with_env(Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("base_uri"), "unknown key is named: {e}");

        let f = write(dir.path(), "s.toml", "[api\n");
        assert!(matches!(load_with_env(Some(&f), &[]), Err(ConfigError::Syntax { .. })));
    }

    #[test]
    fn https_required_except_loopback() {
        let k = ("EKYC_API_KEY", "k");
        let e = load_with_env(None, &env(&[("EKYC_API_BASE_URL", "http://kyc.example.com"), k])).unwrap_err();
        assert!(e.to_string().contains("https is required"), "{e}");
        for ok in ["http://127.0.0.1:9/", "http://localhost:8080", "http://[::1]:80", "https://kyc.example.com"] {
            load_with_env(None, &env(&[("EKYC_API_BASE_URL", ok), k])).unwrap();
        }
    }

    #[test]
    fn demo_only_when_nothing_is_configured_or_asked_for() {
        let data = ("EKYC_DATA_DIR", "/tmp/x");
        // Nothing configured: a demo, whose camera may fall back to the demo pictures.
        let l = load_with_env(None, &env(&[data])).unwrap();
        assert_eq!(l.mode, RunMode::Demo { asked: false });
        assert!(l.config.camera.demo_fallback);
        assert!(l.render().contains("run mode: demo"), "{}", l.render());
        // Asked for, even with API settings that need no key.
        let l = load_with_env(None, &env(&[data, ("EKYC_DEMO_ENABLED", "true"), ("EKYC_API_CONNECT_TIMEOUT", "3s")]))
            .unwrap();
        assert_eq!(l.mode, RunMode::Demo { asked: true });
        // Any API setting, a config file, or demo.enabled = false: production, and the camera never falls back.
        for e in [&[data, ("EKYC_API_CONNECT_TIMEOUT", "3s")][..], &[data, ("EKYC_DEMO_ENABLED", "false")][..]] {
            let l = load_with_env(None, &env(e)).unwrap();
            assert_eq!(l.mode, RunMode::Production, "{e:?}");
            assert!(!l.config.camera.demo_fallback);
            assert!(l.render().contains("commands that need the API refuse to run"), "{}", l.render());
        }
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "k.toml", "[camera]\nfps = 25\n");
        assert_eq!(load_with_env(Some(&f), &env(&[data])).unwrap().mode, RunMode::Production);
        let f = write(dir.path(), "d.toml", "[demo]\nenabled = true\n");
        assert_eq!(load_with_env(Some(&f), &env(&[data])).unwrap().mode, RunMode::Demo { asked: true });
        // A configured API is production.
        let l =
            load_with_env(None, &env(&[data, ("EKYC_API_BASE_URL", "https://kyc.example.com"), ("EKYC_API_KEY", "k")]))
                .unwrap();
        assert_eq!(l.mode, RunMode::Production);
    }

    #[test]
    fn a_key_without_a_base_url_is_refused_naming_both() {
        // Before, this silently used the built-in sandbox and told the customer "accepted".
        for mode in [None, Some("true")] {
            let mut e = vec![("EKYC_API_KEY", "sk_live_1"), ("EKYC_DATA_DIR", "/tmp/x")];
            if let Some(m) = mode {
                e.push(("EKYC_DEMO_ENABLED", m));
            }
            let err = load_with_env(None, &env(&e)).unwrap_err().to_string();
            assert!(err.starts_with("api.base_url:") && err.contains("EKYC_API_KEY"), "{err}");
            assert!(!err.contains("sk_live_1"), "the key is never printed: {err}");
        }
    }

    #[test]
    fn base_url_without_a_key_is_refused() {
        let e = load_with_env(None, &env(&[("EKYC_API_BASE_URL", "https://kyc.example.com")])).unwrap_err();
        assert!(e.to_string().contains("no credential"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn key_file_permissions_are_enforced_and_key_never_printed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = write(dir.path(), "key", "sk_secret_value\n");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = write(
            dir.path(),
            "c.toml",
            &format!("[api]\nbase_url = \"https://kyc.example.com\"\nkey_file = \"{}\"\n", key.display()),
        );
        let e = load_with_env(Some(&cfg), &[]).unwrap_err().to_string();
        assert!(e.contains("readable by group or others") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("sk_secret_value"));

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = load_with_env(Some(&cfg), &[]).unwrap();
        assert_eq!(l.api_key.as_ref().unwrap().expose(), "sk_secret_value");
        let shown = format!("{} {:?}", l.render(), l);
        assert!(!shown.contains("sk_secret_value"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[cfg(unix)]
    #[test]
    fn staff_pin_comes_from_a_private_file_or_the_environment_and_is_never_printed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pin = write(dir.path(), "pin", "918273\n");
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o640)).unwrap();
        let cfg = write(dir.path(), "c.toml", &format!("[kiosk]\nstaff_pin_file = \"{}\"\n", pin.display()));
        let e = load_with_env(Some(&cfg), &[]).unwrap_err().to_string();
        assert!(e.starts_with("staff pin file") && e.contains("chmod 600"), "{e}");

        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = load_with_env(Some(&cfg), &[]).unwrap();
        assert!(l.staff_pin.as_ref().unwrap().matches("918273"));
        let shown = format!("{} {:?}", l.render(), l);
        assert!(!shown.contains("918273") && shown.contains("staff pin: set (redacted)"), "{shown}");

        // The variable wins; a malformed PIN is refused without being quoted.
        let l = load_with_env(Some(&cfg), &env(&[("EKYC_STAFF_PIN", "445566")])).unwrap();
        assert!(l.staff_pin.unwrap().matches("445566"));
        let e = load_with_env(None, &env(&[("EKYC_STAFF_PIN", "12x456")])).unwrap_err().to_string();
        assert_eq!(e, "staff pin from EKYC_STAFF_PIN: must hold digits only");
        assert!(load_with_env(None, &[]).unwrap().staff_pin.is_none());
    }

    #[test]
    fn env_key_resolution_descends_into_sub_tables() {
        let d = toml::Table::try_from(Config::default()).unwrap();
        assert_eq!(resolve_env_key(&d, "api_paths_show").unwrap(), ["api", "paths", "show"]);
        assert_eq!(resolve_env_key(&d, "api_base_url").unwrap(), ["api", "base_url"]);
        assert_eq!(resolve_env_key(&d, "nonsense"), None);
    }

    #[test]
    fn example_file_documents_every_key_and_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/kiosk.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Every key appears, commented out, as `# key = value` inside its section.
        let mut section = String::new();
        let mut documented = Vec::new();
        for line in text.lines() {
            let l = line.trim_start_matches('#').trim();
            if l.starts_with('[') && l.ends_with(']') {
                section = l.trim_matches(['[', ']']).to_string();
            } else if let Some((k, _)) = l.split_once(" = ")
                && !k.contains(' ')
            {
                documented.push(format!("{section}.{k}"));
            }
        }
        for key in known_keys() {
            assert!(documented.contains(&key), "assets/kiosk.example.toml does not document `{key}`");
        }
        // Uncommented, the example is a valid configuration equal to the defaults (but for the optional keys).
        let uncommented: String = text
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|r| r.starts_with('[') || r.contains(" = ")).unwrap_or(""))
            .filter(|l| {
                let name = format!(".{}", l.split(" = ").next().unwrap_or("#"));
                !OPTIONAL_KEYS.iter().any(|k| k.ends_with(&name))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "ex.toml", &uncommented);
        let l = load_with_env(Some(&f), &env(&[("EKYC_DATA_DIR", "/tmp/x")])).unwrap();
        let mut expected = Config::default();
        expected.storage.data_dir = "/tmp/x".into();
        assert_eq!(l.config, expected);
    }
}
