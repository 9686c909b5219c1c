//! The TLS side of a connection to the bank's gateway: the kiosk's own certificate and private key (client
//! authentication, instead of a vendor API key) and the private CA trusted for the gateway's certificate. Read from
//! PEM files on the caller's thread, checked before ureq is handed them (a key readable by others, a file without a
//! certificate, a key that does not belong to the certificate are configuration errors naming the key), and
//! stamped so that the client notices a renewed certificate and loads it again without a restart.

use super::config::ApiConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, parse_pem};
use zeroize::Zeroizing;

/// The systemd credential holding the kiosk's private key when `api.client_key_file` is unset
/// (`LoadCredential[Encrypted]=ekyc-client-key:...`).
pub const CREDENTIAL_KEY: &str = "ekyc-client-key";
/// The largest PEM file read (a certificate chain, a key, a CA bundle).
const MAX_PEM: u64 = 1024 * 1024;

/// Why the TLS files cannot be used. Messages name the configuration key and the file, never the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsFileError {
    /// A file could not be opened or read.
    #[error("{key} ({path}): cannot read: {reason}")]
    Read {
        /// The configuration key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's words.
        reason: String,
    },
    /// A file was read but cannot be used (permissions, content).
    #[error("{key} ({path}): {reason}")]
    Invalid {
        /// The configuration key that names the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate is configured without its key.
    #[error(
        "api.client_cert_file is set but there is no private key: set api.client_key_file or give the service the \
         systemd credential {CREDENTIAL_KEY}"
    )]
    NoKey,
}

/// Where the TLS material comes from, resolved from `[api]` (and the systemd credentials directory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// The kiosk's certificate chain (PEM), leaf first.
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600 or stricter).
    pub client_key: Option<PathBuf>,
    /// The CA(s) trusted for the server (PEM); `None`: the public web roots.
    pub ca: Option<PathBuf>,
}

/// What a [`TlsFiles`] holds, ready for ureq.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The kiosk's certificate and key.
    pub client: Option<ClientCert>,
    /// The only roots trusted for the server, when `api.ca_file` is set.
    pub roots: Option<Arc<Vec<Certificate<'static>>>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("client_cert", &self.client.is_some())
            .field("roots", &self.roots.as_ref().map(|r| r.len()))
            .finish()
    }
}

/// A file's identity and version (device, inode, size, modification time): a change means it was replaced.
pub type FileStamp = Option<(u64, u64, u64, i64, i64)>;

impl TlsFiles {
    /// Resolves the files of `[api]`: the key from `api.client_key_file`, else from the systemd credential
    /// [`CREDENTIAL_KEY`] in `credentials` (the service's `$CREDENTIALS_DIRECTORY`).
    pub fn from_config(cfg: &ApiConfig, credentials: Option<&Path>) -> Result<TlsFiles, TlsFileError> {
        let client_key = match (&cfg.client_cert_file, &cfg.client_key_file) {
            (None, _) => None,
            (Some(_), Some(k)) => Some(k.clone()),
            (Some(_), None) => match credentials.map(|d| d.join(CREDENTIAL_KEY)) {
                Some(p) if p.is_file() => Some(p),
                _ => return Err(TlsFileError::NoKey),
            },
        };
        Ok(TlsFiles { client_cert: cfg.client_cert_file.clone(), client_key, ca: cfg.ca_file.clone() })
    }

    /// Whether a client certificate is configured (the kiosk talks to a gateway, not to the vendor).
    pub fn has_client_cert(&self) -> bool {
        self.client_cert.is_some()
    }

    /// Whether anything differs from ureq's defaults.
    pub fn is_empty(&self) -> bool {
        self.client_cert.is_none() && self.ca.is_none()
    }

    /// Reads and checks every file.
    pub fn load(&self) -> Result<TlsMaterial, TlsFileError> {
        let roots = match &self.ca {
            Some(path) => {
                let pem = read_pem(path, "api.ca_file", false)?;
                Some(Arc::new(certificates(&pem, path, "api.ca_file")?))
            }
            None => None,
        };
        let client = match (&self.client_cert, &self.client_key) {
            (Some(cert_path), Some(key_path)) => {
                let pem = read_pem(cert_path, "api.client_cert_file", false)?;
                let chain = certificates(&pem, cert_path, "api.client_cert_file")?;
                let key_pem = read_pem(key_path, "api.client_key_file", true)?;
                let invalid = |reason: &str| TlsFileError::Invalid {
                    key: "api.client_key_file",
                    path: key_path.clone(),
                    reason: reason.into(),
                };
                let key = PrivateKey::from_pem(&key_pem).map_err(|_| invalid("holds no PEM private key"))?;
                check_pair(&chain, &key_pem).map_err(|reason| invalid(&reason))?;
                Some(ClientCert::new_with_certs(&chain, key))
            }
            (Some(_), None) => return Err(TlsFileError::NoKey),
            (None, _) => None,
        };
        Ok(TlsMaterial { client, roots })
    }

    /// The stamps of every file, in a fixed order: comparing two tells whether one was replaced.
    pub fn stamps(&self) -> Vec<FileStamp> {
        [&self.client_cert, &self.client_key, &self.ca].iter().map(|p| p.as_deref().and_then(stamp)).collect()
    }
}

fn stamp(path: &Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// Reads a PEM file; `secret`: refuse one that group or others can read (a leaked key lets anyone act as this
/// kiosk). The buffer is zeroed when dropped.
fn read_pem(path: &Path, key: &'static str, secret: bool) -> Result<Zeroizing<Vec<u8>>, TlsFileError> {
    use std::io::Read;
    let read_err = |e: std::io::Error| TlsFileError::Read { key, path: path.to_owned(), reason: e.to_string() };
    let invalid = |reason: String| TlsFileError::Invalid { key, path: path.to_owned(), reason };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(invalid("is not a regular file".into()));
    }
    if secret {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(invalid(format!(
                "is readable by group or others (mode {mode:04o}); a leaked key lets anyone act as this kiosk. Run \
                 `chmod 600 {}`",
                path.display()
            )));
        }
    }
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_PEM + 1).read_to_end(&mut buf).map_err(read_err)?;
    if buf.len() as u64 > MAX_PEM {
        return Err(invalid(format!("is larger than {MAX_PEM} bytes")));
    }
    Ok(buf)
}

fn certificates(pem: &[u8], path: &Path, key: &'static str) -> Result<Vec<Certificate<'static>>, TlsFileError> {
    let invalid = |reason: &str| TlsFileError::Invalid { key, path: path.to_owned(), reason: reason.into() };
    let mut out = Vec::new();
    for item in parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(_) => return Err(invalid("is not valid PEM")),
        }
    }
    if out.is_empty() {
        return Err(invalid("holds no PEM certificate"));
    }
    Ok(out)
}

/// Whether the key is one rustls can sign with and belongs to the chain's first certificate (ureq would otherwise
/// panic on first use).
fn check_pair(chain: &[Certificate<'static>], key_pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| "holds no PEM private key".to_string())?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|_| "holds a private key of an unsupported type".to_string())?;
    let certs: Vec<CertificateDer<'static>> =
        chain.iter().map(|c| CertificateDer::from(c.der()).into_owned()).collect();
    rustls::sign::CertifiedKey::new(certs, signer)
        .keys_match()
        .map_err(|_| "does not belong to the certificate in api.client_cert_file".to_string())
}
