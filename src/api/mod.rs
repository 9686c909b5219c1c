//! The Lapis eKYC API client: wire types, the blocking `ureq` client, streamed request bodies, and typed errors
//! with their classification. Runs on whichever thread owns an [`ApiClient`] (the uploader thread in the kiosk, the
//! main thread in the CLI); the client holds one agent and is `Send + Sync`.
//!
//! Contract: `../shared/api/lapis-ekyc-contract.md`, decisions in its section 7.
//!
//! One file per concept: `client` (the agent, deadlines, the exchange), `body` (streamed base64 JSON bodies),
//! `wire` (what goes over the wire, parsed defensively), `error` (the typed error, its routing and classes),
//! `endpoint` (the endpoints), `codes` (stable codes and the prompt table), `config` (the `[api]` section), `tls` (the kiosk's client
//! certificate and the gateway's CA).

mod body;
mod client;
mod codes;
mod config;
mod endpoint;
mod error;
mod tls;
mod wire;

pub use body::{ImageBody, MAX_BASE64_LEN, base64_len};
pub use client::ApiClient;
pub use codes::{ErrorClass, ErrorCode, Prompt, RetryAction, markdown_table};
pub use config::{ApiConfig, ApiFields, ApiPaths, FaceMatchConfig, PhoneFormat, is_loopback};
pub use endpoint::Endpoint;
pub use error::{ApiError, GATEWAY_FORBIDDEN, MAX_RETRY_AFTER};
pub use tls::{CREDENTIAL_KEY, FileStamp, TlsFileError, TlsFiles, TlsMaterial};
pub use wire::{DocumentResult, DocumentUpload, FaceResult, KycRequest, LivenessResult, NewRequest};
