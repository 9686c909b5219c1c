//! Encryption at rest for queued images: the key file and the chunked AES-256-GCM format. Runs on the queue
//! thread (the only owner of the database connection).
//!
//! Format: an image of `n` plaintext bytes is split into chunks of [`CHUNK`] bytes (the last one shorter, an empty
//! image is one empty chunk); chunk `i` is stored at offset `i * (CHUNK + TAG)` as its ciphertext followed by its
//! 16-byte tag. Each chunk's nonce is the image's random 8-byte prefix followed by the 32-bit chunk index, and its
//! associated data binds the image row id, the chunk index, the plaintext length and a "last chunk" flag, so chunks
//! cannot be reordered, truncated, or moved to another row. Any chunk can be decrypted on its own, which lets an
//! upload stream an image out of an SQLite blob without holding all of it.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes of authentication tag per chunk.
pub const TAG: usize = 16;
/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "queue.key";
/// The name of the systemd credential that holds the key instead (`LoadCredential=` or, sealed to this machine's
/// TPM, `LoadCredentialEncrypted=`), read from `$CREDENTIALS_DIRECTORY/ekyc-queue-key`.
pub const KEY_CREDENTIAL: &str = "ekyc-queue-key";
/// Where a new key file is written before it is renamed into place.
const KEY_TEMP: &str = "queue.key.tmp";

/// Why the queue key could not be used.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key file could not be read, created or inspected.
    #[error("queue key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Group or others may read the key file.
    #[error(
        "queue key {path} is readable by group or others (mode {mode:04o}); anyone who can read it can decrypt the \
         queued images. Run `chmod 600 {path}`"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file does not hold exactly 32 bytes.
    #[error("queue key {path} is not a 32-byte key ({len} bytes)")]
    Length {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The operating system's random source failed.
    #[error("no randomness available for a new queue key")]
    Random,
}

/// Why a chunk could not be encrypted or decrypted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The chunk failed authentication: wrong key, or tampered or corrupt data.
    #[error("an image chunk failed authentication (wrong key or corrupt data)")]
    Auth,
    /// The stored ciphertext has the wrong length for its plaintext length.
    #[error("an encrypted image has the wrong length")]
    Length,
    /// The operating system's random source failed.
    #[error("no randomness available for a nonce")]
    Random,
}

/// The queue's 256-bit key. Zeroed on drop; never printed.
pub struct QueueKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for QueueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueKey(redacted)")
    }
}

/// Whether the key file was there or had to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from an existing file.
    Existing,
    /// Created now (first run).
    Created,
    /// Read from the systemd credential [`KEY_CREDENTIAL`] (never created by the kiosk).
    Credential,
}

impl QueueKey {
    /// A key from raw bytes (tests and benchmarks).
    pub fn from_bytes(bytes: &[u8; 32]) -> QueueKey {
        QueueKey { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)) }
    }

    /// Reads `<dir>/queue.key`, refusing a file group or others can read. When it does not exist and `create` is
    /// true, makes a new random key with `create_new` and mode 0600 (never readable by anyone else, not even
    /// briefly). Returns `Ok(None)` when it does not exist and `create` is false.
    pub fn load_or_create(dir: &Path, create: bool) -> Result<Option<(QueueKey, KeyOrigin)>, KeyError> {
        Self::load_from(dir, None, create)
    }

    /// [`QueueKey::load_or_create`], except that when `credentials` (the service's `$CREDENTIALS_DIRECTORY`) holds
    /// [`KEY_CREDENTIAL`], that is the key: the file in `dir` is then neither read nor created. A new key file is
    /// written to a temporary file, fsynced, renamed into place and the directory fsynced, so a crash leaves either
    /// no key file or a whole one (never a short key that would lock the queue).
    pub fn load_from(
        dir: &Path,
        credentials: Option<&Path>,
        create: bool,
    ) -> Result<Option<(QueueKey, KeyOrigin)>, KeyError> {
        if let Some(c) = credentials {
            let path = c.join(KEY_CREDENTIAL);
            match read_key(&path) {
                Ok(key) => return Ok(Some((key, KeyOrigin::Credential))),
                Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let path = dir.join(KEY_FILE);
        match read_key(&path) {
            Ok(key) => Ok(Some((key, KeyOrigin::Existing))),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && create => {
                create_key(dir).map(|k| Some((k, KeyOrigin::Created)))
            }
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Encrypts chunk `index` of image `row` (plaintext length `total`) in place, returning the tag.
    pub fn seal_chunk(
        &self,
        row: i64,
        prefix: &[u8; 8],
        index: u32,
        total: u64,
        buf: &mut [u8],
    ) -> Result<[u8; TAG], CryptoError> {
        let (nonce, aad) = nonce_aad(row, prefix, index, total);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, buf)
            .map_err(|_| CryptoError::Auth)?;
        Ok(tag.into())
    }

    /// Decrypts chunk `index` of image `row` in place, checking its tag.
    pub fn open_chunk(
        &self,
        row: i64,
        prefix: &[u8; 8],
        index: u32,
        total: u64,
        buf: &mut [u8],
        tag: &[u8; TAG],
    ) -> Result<(), CryptoError> {
        let (nonce, aad) = nonce_aad(row, prefix, index, total);
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, buf, Tag::from_slice(tag))
            .map_err(|_| CryptoError::Auth)
    }

    /// Encrypts a small value (the key check) with a random nonce: `nonce || ciphertext || tag`.
    pub fn seal_small(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut buf = plain.to_vec();
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, &mut buf)
            .map_err(|_| CryptoError::Auth)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts what [`QueueKey::seal_small`] produced.
    pub fn open_small(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 12 + TAG {
            return Err(CryptoError::Length);
        }
        let (nonce, rest) = sealed.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - TAG);
        let mut buf = ct.to_vec();
        self.cipher
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut buf, Tag::from_slice(tag))
            .map_err(|_| CryptoError::Auth)?;
        Ok(buf)
    }
}

/// Reads a 32-byte key file that only its owner can read.
fn read_key(path: &Path) -> Result<QueueKey, KeyError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_owned(), mode });
    }
    if meta.len() != 32 {
        return Err(KeyError::Length { path: path.to_owned(), len: meta.len() });
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    f.read_exact(&mut bytes[..]).map_err(io)?;
    Ok(QueueKey::from_bytes(&bytes))
}

/// Makes a new random key file in `dir` atomically: temporary file (0600 from the start), write, fsync, rename,
/// fsync of the directory. The caller holds the queue's lock, so no one else writes the temporary file.
fn create_key(dir: &Path) -> Result<QueueKey, KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(KEY_FILE);
    let temp = dir.join(KEY_TEMP);
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| KeyError::Io { path: p, source }
    };
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|_| KeyError::Random)?;
    // A temporary file left by a crash holds a key nothing was ever encrypted with.
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&temp)(e)),
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).map_err(io(&temp))?;
    f.write_all(&bytes[..]).map_err(io(&temp))?;
    f.sync_all().map_err(io(&temp))?;
    drop(f);
    std::fs::rename(&temp, &path).map_err(io(&path))?;
    // The rename is durable only once the directory is.
    crate::durable::sync_dir(dir).map_err(io(dir))?;
    Ok(QueueKey::from_bytes(&bytes))
}

fn nonce_aad(row: i64, prefix: &[u8; 8], index: u32, total: u64) -> ([u8; 12], [u8; 21]) {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(prefix);
    nonce[8..].copy_from_slice(&index.to_be_bytes());
    let last = index + 1 == chunk_count(total);
    let mut aad = [0u8; 21];
    aad[..8].copy_from_slice(&row.to_be_bytes());
    aad[8..12].copy_from_slice(&index.to_be_bytes());
    aad[12..20].copy_from_slice(&total.to_be_bytes());
    aad[20] = u8::from(last);
    (nonce, aad)
}

/// How many chunks an image of `total` plaintext bytes has (at least one).
pub fn chunk_count(total: u64) -> u32 {
    let n = total.div_ceil(CHUNK as u64).max(1);
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Stored (ciphertext) length of an image of `total` plaintext bytes.
pub fn sealed_len(total: u64) -> u64 {
    total + u64::from(chunk_count(total)) * TAG as u64
}

/// Plaintext range `(offset, len)` of chunk `index`.
pub fn chunk_span(total: u64, index: u32) -> (u64, usize) {
    let start = u64::from(index) * CHUNK as u64;
    let len = total.saturating_sub(start).min(CHUNK as u64) as usize;
    (start, len)
}

/// Offset of chunk `index` in the stored ciphertext.
pub fn sealed_offset(index: u32) -> u64 {
    u64::from(index) * (CHUNK + TAG) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> QueueKey {
        QueueKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn chunk_geometry() {
        let table: &[(u64, u32, u64)] = &[
            (0, 1, 16),
            (1, 1, 17),
            (CHUNK as u64, 1, CHUNK as u64 + 16),
            (CHUNK as u64 + 1, 2, CHUNK as u64 + 1 + 32),
            (300_000, 5, 300_000 + 80),
        ];
        for &(total, chunks, sealed) in table {
            assert_eq!(chunk_count(total), chunks, "{total}");
            assert_eq!(sealed_len(total), sealed, "{total}");
        }
        assert_eq!(chunk_span(CHUNK as u64 + 5, 1), (CHUNK as u64, 5));
    }

    #[test]
    fn chunks_are_bound_to_row_index_and_length() {
        let k = key();
        let prefix = [1u8; 8];
        let plain = b"jpeg bytes".to_vec();
        let mut buf = plain.clone();
        let tag = k.seal_chunk(5, &prefix, 0, 10, &mut buf).unwrap();
        assert_ne!(buf, plain);
        let attempts: &[(i64, u32, u64, bool)] =
            &[(5, 0, 10, true), (6, 0, 10, false), (5, 1, 10, false), (5, 0, 11, false)];
        for &(row, index, total, ok) in attempts {
            let mut b = buf.clone();
            let r = k.open_chunk(row, &prefix, index, total, &mut b, &tag);
            assert_eq!(r.is_ok(), ok, "row {row} index {index} total {total}");
            if ok {
                assert_eq!(b, plain);
            }
        }
        let mut b = buf.clone();
        let wrong = QueueKey::from_bytes(&[8u8; 32]);
        assert_eq!(wrong.open_chunk(5, &prefix, 0, 10, &mut b, &tag), Err(CryptoError::Auth));
    }

    #[test]
    fn key_file_created_0600_and_loose_permissions_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(QueueKey::load_or_create(dir.path(), false).unwrap().is_none());
        let (_, origin) = QueueKey::load_or_create(dir.path(), true).unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let path = dir.path().join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (_, origin) = QueueKey::load_or_create(dir.path(), true).unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Existing);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = QueueKey::load_or_create(dir.path(), true).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("0644"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(QueueKey::load_or_create(dir.path(), true), Err(KeyError::Length { .. })));
    }

    #[test]
    fn a_systemd_credential_is_the_key_and_a_new_key_file_appears_whole() {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let creds = tempfile::tempdir().unwrap();
        // No credential yet: the file is created, atomically (no temporary left; a stale one is replaced).
        std::fs::write(dir.path().join(KEY_TEMP), b"short").unwrap();
        let (file_key, origin) = QueueKey::load_from(dir.path(), Some(creds.path()), true).unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert!(!dir.path().join(KEY_TEMP).exists());
        let path = dir.path().join(KEY_FILE);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A credential (systemd makes it 0400) takes precedence over the file.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(creds.path().join(KEY_CREDENTIAL))
            .unwrap();
        f.write_all(&[42u8; 32]).unwrap();
        drop(f);
        let (cred_key, origin) = QueueKey::load_from(dir.path(), Some(creds.path()), true).unwrap().unwrap();
        assert_eq!(origin, KeyOrigin::Credential);
        let sealed = QueueKey::from_bytes(&[42u8; 32]).seal_small(b"x", b"a").unwrap();
        assert_eq!(cred_key.open_small(&sealed, b"a").unwrap(), b"x");
        assert!(file_key.open_small(&sealed, b"a").is_err());
        // With a credential, no key file is ever made.
        let other = tempfile::tempdir().unwrap();
        QueueKey::load_from(other.path(), Some(creds.path()), true).unwrap().unwrap();
        assert!(!other.path().join(KEY_FILE).exists());
    }

    #[test]
    fn small_values_round_trip() {
        let k = key();
        let s = k.seal_small(b"check", b"aad").unwrap();
        assert_eq!(k.open_small(&s, b"aad").unwrap(), b"check");
        assert!(k.open_small(&s, b"other").is_err());
        assert!(k.open_small(&s[..10], b"aad").is_err());
    }
}
