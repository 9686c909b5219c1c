//! The sandbox's stored state: documents (a normalised portrait crop and the extracted data per document id, never
//! whole images) and eKYC requests, both capped. Requests are optionally persisted to a JSON state file (written
//! atomically: temp file, fsync, rename; mode 0600) so an operator's training data survives a restart; documents
//! are kept in memory only, because a portrait crop is biometric and nothing biometric is written outside the
//! encrypted queue (a client holding a document id from before a restart gets "no document identification data"
//! and uploads the document again, as it would after the real service forgot it). Shared by the sandbox workers
//! behind a mutex.

use super::recognize::Portrait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest state file read at start.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;
/// State file format version.
const VERSION: u32 = 2;

/// Why the state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file could not be read or written.
    #[error("sandbox state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file is not a sandbox state file (left untouched).
    #[error("sandbox state file {path} is not valid ({reason}); move it away to start afresh")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A stored document.
#[derive(Debug, Clone)]
pub struct Document {
    /// `documentIdentificationId`.
    pub id: String,
    /// The portrait crop.
    pub portrait: Portrait,
    /// The extracted data (`result`).
    pub id_information: Value,
    /// The last successful face-match score.
    pub face_match: Option<f64>,
}

/// A stored eKYC request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRequest {
    /// Request id.
    pub id: String,
    /// Email as sent.
    pub email: String,
    /// Phone number as sent.
    pub phone_number: String,
    /// The phone's digits (uniqueness key).
    pub phone_digits: String,
    /// The document it was created from.
    pub document_id: String,
    /// Creation time, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// Accepted by an operator.
    pub accepted: bool,
    /// Face-match score of the document at creation.
    pub face_match: Option<f64>,
    /// Extracted data of the document.
    pub id_information: Value,
}

impl StoredRequest {
    /// The contract's request object (section 4).
    pub fn to_json(&self, now_ms: u64, validation_delay: Duration) -> Value {
        let validated = now_ms.saturating_sub(self.created_unix_ms) >= validation_delay.as_millis() as u64;
        json!({
            "id": self.id,
            "email": self.email,
            "phoneNumber": self.phone_number,
            "isValidated": validated,
            "isAccepted": self.accepted,
            "idFrontImage": null,
            "idBackImage": null,
            "idSideImage": null,
            "faceImage": null,
            "faceMatch": self.face_match,
            "idInformation": self.id_information,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    requests: Vec<StoredRequest>,
}

/// The stored documents and requests.
#[derive(Debug)]
pub struct Store {
    documents: VecDeque<Document>,
    requests: Vec<StoredRequest>,
    path: Option<PathBuf>,
    max_documents: usize,
    max_requests: usize,
}

impl Store {
    /// An empty store, or the one in `path` when the file exists.
    pub fn open(path: Option<&Path>, max_documents: usize, max_requests: usize) -> Result<Store, StateError> {
        let mut store = Store {
            documents: VecDeque::new(),
            requests: Vec::new(),
            path: path.map(Path::to_owned),
            max_documents: max_documents.max(1),
            max_requests: max_requests.max(1),
        };
        let Some(path) = path else { return Ok(store) };
        let io = |source| StateError::Io { path: path.to_owned(), source };
        let corrupt = |reason: String| StateError::Corrupt { path: path.to_owned(), reason };
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(io(e)),
        };
        let mut text = Vec::new();
        use std::io::Read;
        f.take(MAX_STATE_BYTES + 1).read_to_end(&mut text).map_err(io)?;
        if text.len() as u64 > MAX_STATE_BYTES {
            return Err(corrupt(format!("larger than {MAX_STATE_BYTES} bytes")));
        }
        let file: StateFile = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.version != VERSION {
            return Err(corrupt(format!("version {} (expected {VERSION})", file.version)));
        }
        store.requests = file.requests;
        Ok(store)
    }

    /// Writes the state file, if any (temp file, fsync, rename; mode 0600).
    pub fn save(&self) -> Result<(), StateError> {
        let Some(path) = &self.path else { return Ok(()) };
        let io = |source| StateError::Io { path: path.clone(), source };
        let file = StateFile { version: VERSION, requests: self.requests.clone() };
        let bytes = serde_json::to_vec(&file).map_err(|e| io(std::io::Error::other(e)))?;
        crate::durable::replace_file(path, &bytes, 0o600).map_err(io)
    }

    /// Stores a document, dropping the oldest one when full.
    pub fn add_document(&mut self, doc: Document) {
        while self.documents.len() >= self.max_documents {
            self.documents.pop_front();
        }
        self.documents.push_back(doc);
    }

    /// A document by id.
    pub fn document(&self, id: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == id)
    }

    /// Records a successful face match on a document.
    pub fn set_face_match(&mut self, id: &str, score: f64) {
        if let Some(d) = self.documents.iter_mut().find(|d| d.id == id) {
            d.face_match = Some(score);
        }
    }

    /// Whether another request may be stored.
    pub fn requests_full(&self) -> bool {
        self.requests.len() >= self.max_requests
    }

    /// The request already using this email (case-insensitive) or phone (digits), if any: `(email_taken, phone_taken)`.
    pub fn contact_taken(&self, email: &str, phone_digits: &str) -> (bool, bool) {
        let email_taken = self.requests.iter().any(|r| r.email.eq_ignore_ascii_case(email));
        let phone_taken = self.requests.iter().any(|r| r.phone_digits == phone_digits);
        (email_taken, phone_taken)
    }

    /// Stores a request.
    pub fn add_request(&mut self, r: StoredRequest) {
        self.requests.push(r);
    }

    /// A request by id.
    pub fn request(&self, id: &str) -> Option<&StoredRequest> {
        self.requests.iter().find(|r| r.id == id)
    }

    /// A request by id, to change it.
    pub fn request_mut(&mut self, id: &str) -> Option<&mut StoredRequest> {
        self.requests.iter_mut().find(|r| r.id == id)
    }

    /// Every request, oldest first.
    pub fn requests(&self) -> &[StoredRequest] {
        &self.requests
    }

    /// Removes a request; false when there is none with that id.
    pub fn delete_request(&mut self, id: &str) -> bool {
        let before = self.requests.len();
        self.requests.retain(|r| r.id != id);
        self.requests.len() != before
    }

    /// Forgets every document and request.
    pub fn wipe(&mut self) {
        self.documents.clear();
        self.requests.clear();
    }
}

/// A random UUID-like id (version 4 layout) from the OS generator.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness (should not happen): fall back to a seeded PRNG, still unique enough for a sandbox.
        for x in b.iter_mut() {
            *x = fastrand::u8(..);
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Document {
        Document {
            id: id.into(),
            portrait: Portrait::from_raw(vec![7; 4096]).unwrap(),
            id_information: json!({"a": 1}),
            face_match: None,
        }
    }

    #[test]
    fn ids_look_like_uuids_and_differ() {
        let a = random_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_ne!(a, random_id());
    }

    #[test]
    fn documents_are_capped_oldest_first() {
        let mut s = Store::open(None, 2, 2).unwrap();
        for id in ["a", "b", "c"] {
            s.add_document(doc(id));
        }
        assert!(s.document("a").is_none() && s.document("c").is_some());
        assert!(s.document("b").is_some());
    }

    #[test]
    fn state_file_round_trips_with_mode_0600_and_corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = Store::open(Some(&path), 10, 10).unwrap();
        s.add_document(doc("d1"));
        s.add_request(StoredRequest {
            id: "r1".into(),
            email: "a@b.co".into(),
            phone_number: "441234567890".into(),
            phone_digits: "441234567890".into(),
            document_id: "d1".into(),
            created_unix_ms: 5,
            accepted: false,
            face_match: Some(0.9),
            id_information: json!({}),
        });
        s.save().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let t = Store::open(Some(&path), 10, 10).unwrap();
        assert!(t.document("d1").is_none(), "portraits are biometric: never written to the state file");
        assert_eq!(t.request("r1").unwrap().face_match, Some(0.9));
        assert_eq!(t.contact_taken("A@B.CO", "1"), (true, false));

        std::fs::write(&path, b"{not json").unwrap();
        let e = Store::open(Some(&path), 10, 10).unwrap_err().to_string();
        assert!(e.contains("not valid"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json", "a corrupt file is left untouched");
    }
}
