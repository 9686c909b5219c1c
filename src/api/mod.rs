//! The Lapis eKYC API client: wire types, the blocking `ureq` client, streamed request bodies, and typed errors
//! with their classification. Runs on whichever thread owns an [`ApiClient`] (the uploader thread in the kiosk, the
//! main thread in the CLI); the client holds one agent and is `Send + Sync`.
//!
//! Contract: `../shared/api/lapis-ekyc-contract.md`, decisions in its section 7.

mod codes;
mod config;

pub use codes::{ErrorClass, ErrorCode, Prompt, RetryAction};
pub use config::{ApiConfig, ApiFields, ApiPaths, FaceMatchConfig, PhoneFormat, is_loopback};
