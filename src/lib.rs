//! ekyc-kiosk: an eKYC onboarding kiosk for bank branches and field terminals.
//!
//! One binary serves as the touchscreen kiosk, the operator desktop, the headless CLI and the local sandbox API.
//! Each module's `//!` header says what it owns and which thread runs it.

pub mod api;
pub mod camera;
pub mod capture;
pub mod cli;
pub mod config;
pub mod contact;
pub mod durable;
pub mod encode;
pub mod flow;
pub mod metrics;
pub mod queue;
pub mod sandbox;
pub mod secret;
pub mod service;
pub mod uploader;
pub mod view;
