//! The Slint glue (UI thread only): the compiled `.slint` components ([`ui`]), the customer window's controller
//! ([`KioskView`]: callbacks -> flow events, flow state -> the `Kiosk` global, effects -> [`Services`]), the operator
//! console ([`OperatorView`], in its own window or behind the staff PIN on the kiosk, with the API calls of
//! [`OperatorApi`]), the [`Mailbox`] workers post to, the real camera, checks and queue ([`LiveServices`],
//! [`QueueLink`]), the DEMO services, and headless rendering to PNG ([`snapshot`]).
//!
//! Worker threads never touch Slint: they post [`slint::SharedPixelBuffer`]s and events to the [`Mailbox`], and the
//! UI thread turns a frame into a [`slint::Image`] when it drains it.

mod camera_choice;
mod config;
mod console;
pub mod demo;
mod kiosk;
mod live;
mod operator;
mod queue_link;
mod services;
pub mod snapshot;
mod staff_lock;

/// The code generated from `ui/app-window.slint` by `build.rs`.
#[allow(missing_docs, clippy::all)]
pub mod ui {
    slint::include_modules!();
}

pub use camera_choice::{CHOICE_FILE, CameraChoice};
pub use config::KioskConfig;
pub use console::{
    ApiFailure, ApiTarget, CameraKind, CameraOption, ConsoleReport, DemoOperatorApi, LiveOperatorApi, OperatorApi,
    RequestChange, RequestSummary,
};
pub use kiosk::{KioskView, contact_error_code, event_loop_wake};
pub use live::{LiveServices, preview_pixels};
pub use operator::{ConsoleHost, OperatorView, SharedServices, format_age};
pub use queue_link::QueueLink;
pub use services::{
    MAILBOX_CAPACITY, Mailbox, PreviewFrame, QueueAlerts, QueueItem, QueueLock, Report, ServiceError, Services,
};
pub use staff_lock::{STAFF_LOCK_FILE, StaffLockError, StaffLockFile};
