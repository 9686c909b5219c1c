//! The endpoints of the Lapis API (contract section 2) as a small `Copy` enum: names for logs and the CLI's JSON,
//! the HTTP method, and which deadline applies. Pure data, any thread.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which endpoint a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// E1, `POST` the ID document images.
    Document,
    /// E2, `POST` the face photo for matching against the document portrait.
    Face,
    /// E3, `POST` the liveness clip (off by default).
    Liveness,
    /// E4, `POST` the eKYC request (contact details and document id).
    CreateRequest,
    /// E5, `PUT` an operator's approval.
    Accept,
    /// E6, `GET` the requests, filtered by approval.
    List,
    /// E7, `GET` one request by id.
    Show,
    /// E9, `DELETE` one request.
    Delete,
    /// `GET` the bank gateway's health route (answered by the gateway itself): the connection check of a kiosk with
    /// a client certificate. Not a vendor endpoint.
    Health,
}

/// HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Endpoint {
    /// Every vendor endpoint, in contract order ([`Endpoint::Health`] is the bank gateway's, not the vendor's).
    pub const ALL: [Endpoint; 8] = [
        Endpoint::Document,
        Endpoint::Face,
        Endpoint::Liveness,
        Endpoint::CreateRequest,
        Endpoint::Accept,
        Endpoint::List,
        Endpoint::Show,
        Endpoint::Delete,
    ];

    /// The stable snake_case name: `document`, `face`, `liveness`, `create_request`, `accept`, `list`, `show`,
    /// `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Document => "document",
            Endpoint::Face => "face",
            Endpoint::Liveness => "liveness",
            Endpoint::CreateRequest => "create_request",
            Endpoint::Accept => "accept",
            Endpoint::List => "list",
            Endpoint::Show => "show",
            Endpoint::Delete => "delete",
            Endpoint::Health => "health",
        }
    }

    /// The enrollment step it belongs to for the CLI JSON: `document` | `face` | `liveness` | `request`.
    pub fn step(self) -> &'static str {
        match self {
            Endpoint::Document => "document",
            Endpoint::Face => "face",
            Endpoint::Liveness => "liveness",
            Endpoint::CreateRequest | Endpoint::Accept | Endpoint::List | Endpoint::Show | Endpoint::Delete => {
                "request"
            }
            Endpoint::Health => "connection",
        }
    }

    /// The contract's number for it (`E1` ... `E9`), for operator messages.
    pub fn contract_id(self) -> &'static str {
        match self {
            Endpoint::Document => "E1",
            Endpoint::Face => "E2",
            Endpoint::Liveness => "E3",
            Endpoint::CreateRequest => "E4",
            Endpoint::Accept => "E5",
            Endpoint::List => "E6",
            Endpoint::Show => "E7",
            Endpoint::Delete => "E9",
            Endpoint::Health => "gateway health",
        }
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Endpoint::Document | Endpoint::Face | Endpoint::Liveness | Endpoint::CreateRequest => Method::Post,
            Endpoint::Accept => Method::Put,
            Endpoint::List | Endpoint::Show | Endpoint::Health => Method::Get,
            Endpoint::Delete => Method::Delete,
        }
    }

    /// Whether the call uploads images (and so gets `api.upload_timeout` rather than `api.request_timeout`).
    pub fn is_upload(self) -> bool {
        matches!(self, Endpoint::Document | Endpoint::Face | Endpoint::Liveness)
    }

    /// Whether the call changes state on the server, so that a lost answer leaves its outcome unknown. Reads (E6,
    /// E7) are never ambiguous: repeating them is harmless.
    pub fn has_effect(self) -> bool {
        self.method() != Method::Get
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_steps_and_serde_agree() {
        let table = [
            (Endpoint::Document, "document", "document", true),
            (Endpoint::Face, "face", "face", true),
            (Endpoint::Liveness, "liveness", "liveness", true),
            (Endpoint::CreateRequest, "create_request", "request", false),
            (Endpoint::Accept, "accept", "request", false),
            (Endpoint::List, "list", "request", false),
            (Endpoint::Show, "show", "request", false),
            (Endpoint::Delete, "delete", "request", false),
        ];
        assert_eq!(table.len(), Endpoint::ALL.len());
        for (e, name, step, upload) in table {
            assert_eq!(e.as_str(), name);
            assert_eq!(e.step(), step);
            assert_eq!(e.is_upload(), upload);
            assert_eq!(serde_json::to_string(&e).unwrap(), format!("\"{name}\""));
        }
        assert!(!Endpoint::List.has_effect() && !Endpoint::Show.has_effect());
        assert!(Endpoint::Delete.has_effect() && Endpoint::Accept.has_effect());
        let h = Endpoint::Health;
        assert_eq!((h.as_str(), h.step(), h.is_upload(), h.has_effect()), ("health", "connection", false, false));
    }
}
