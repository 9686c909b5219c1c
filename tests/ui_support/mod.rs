//! Shared helpers of the headless UI tests: a kiosk window on Slint's testing backend (no display, mocked time),
//! driven by accessible labels like a screen reader or a finger would, with the synchronous DEMO services.

#![allow(dead_code)]

use ekyc_kiosk::flow::FlowConfig;
use ekyc_kiosk::view::demo::{Call, StillServices};
use ekyc_kiosk::view::ui::AppWindow;
use ekyc_kiosk::view::{KioskView, Mailbox};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementRoot};
use slint::ComponentHandle;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Kiosk {
    pub view: Rc<KioskView>,
    pub mailbox: Arc<Mailbox>,
    pub calls: Arc<Mutex<Vec<Call>>>,
    now: Cell<Duration>,
}

/// Every non-empty accessible label in a window (what a screen reader would find), for assertions and their messages.
pub fn labels_of(root: &impl ElementRoot) -> Vec<String> {
    root.root_element()
        .query_descendants()
        .find_all()
        .into_iter()
        .filter_map(|e| e.accessible_label().map(|l| l.to_string()))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Slint's testing backend with the real software renderer (real text metrics, so layout checks mean something),
/// for this test thread.
pub fn install_platform() {
    let options = i_slint_backend_testing::TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    };
    slint::platform::set_platform(Box::new(i_slint_backend_testing::TestingBackend::new(options))).unwrap();
}

/// A kiosk window of `width` x `height` on the testing backend (one per test thread).
pub fn kiosk(config: FlowConfig, width: u32, height: u32, save_fails: bool) -> Kiosk {
    install_platform();
    let app = AppWindow::new().unwrap();
    app.window().set_size(slint::PhysicalSize::new(width, height));
    app.show().unwrap();
    let mailbox = Mailbox::new(|| {});
    let mut services = StillServices::new(mailbox.clone());
    services.save_fails = save_fails;
    let calls = services.calls.clone();
    let view = KioskView::new(app, config, Box::new(services), mailbox.clone());
    view.pump();
    Kiosk { view, mailbox, calls, now: Cell::new(Duration::ZERO) }
}

impl Kiosk {
    pub fn app(&self) -> &AppWindow {
        self.view.app()
    }

    /// Every element with this accessible label.
    pub fn find(&self, label: &str) -> Vec<ElementHandle> {
        ElementHandle::find_by_accessible_label(self.app(), label).collect()
    }

    /// Whether something with this label is on screen.
    pub fn shows(&self, label: &str) -> bool {
        !self.find(label).is_empty()
    }

    /// Every accessible label on screen.
    pub fn labels(&self) -> Vec<String> {
        labels_of(self.app())
    }

    /// The controls (buttons, fields, list items) with this label; plain texts are left out.
    pub fn controls(&self, label: &str) -> Vec<ElementHandle> {
        self.find(label)
            .into_iter()
            .filter(|e| {
                matches!(
                    e.accessible_role(),
                    Some(AccessibleRole::Button | AccessibleRole::TextInput | AccessibleRole::ListItem)
                )
            })
            .collect()
    }

    /// Presses the one enabled control with this label, then lets the workers' answers in.
    pub fn press(&self, label: &str) {
        let found: Vec<ElementHandle> =
            self.controls(label).into_iter().filter(|e| e.accessible_enabled() != Some(false)).collect();
        assert_eq!(found.len(), 1, "expected one enabled {label:?}; on screen: {:?}", self.labels());
        found[0].invoke_accessible_default_action();
        self.view.pump();
    }

    /// Types on the on-screen keyboard, key by key.
    pub fn type_keys(&self, text: &str) {
        for ch in text.chars() {
            let label = if ch == ' ' { "Space".to_string() } else { ch.to_string() };
            self.press(&label);
        }
    }

    /// The accessible value of the one element with this label (e.g. a field's text).
    pub fn value(&self, label: &str) -> String {
        let found = self.controls(label);
        assert_eq!(found.len(), 1, "{label:?}: {:?}", self.labels());
        found[0].accessible_value().unwrap_or_default().to_string()
    }

    /// Advances the kiosk's clock.
    pub fn wait(&self, d: Duration) {
        self.now.set(self.now.get() + d);
        self.view.tick(self.now.get());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}
