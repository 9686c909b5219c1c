//! The outcome of a quality check: [`Verdict`] (accepted or not), every measured number ([`Metrics`]) and the
//! guidance [`Hint`]s in plain words with stable codes the UI translates. Plain data, any thread.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// What is being captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The applicant's face (selfie).
    Face,
    /// The front of the ID document: it must carry the portrait.
    DocumentFront,
    /// The back (or another side) of the ID document: no portrait required.
    DocumentBack,
}

impl Mode {
    /// True for the document modes.
    pub fn is_document(self) -> bool {
        matches!(self, Mode::DocumentFront | Mode::DocumentBack)
    }
}

/// One piece of guidance for the person in front of the camera. The code is stable (the UI translates by it);
/// [`Hint::text`] is the English wording. Listed in the order a person should fix them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hint {
    /// No face found, or the face is turned away.
    LookAtCamera,
    /// More than one face in the frame.
    OnlyOnePerson,
    /// The face is too small in the frame.
    MoveCloser,
    /// The face is too large in the frame.
    MoveBack,
    /// The face is off the centre of the guide oval.
    CentreFace,
    /// No card found, or it covers too little of the guide.
    FillFrameWithCard,
    /// Too dark.
    MoreLight,
    /// Too bright or clipped highlights on the face.
    TooBright,
    /// Clipped highlights on the card.
    AvoidGlare,
    /// Blurred (motion or focus).
    HoldStill,
    /// The front of the document was asked for but no portrait is visible on the card.
    ShowPhotoSide,
}

impl Hint {
    /// Every hint, for tables and documentation.
    pub const ALL: [Hint; 11] = [
        Hint::LookAtCamera,
        Hint::OnlyOnePerson,
        Hint::MoveCloser,
        Hint::MoveBack,
        Hint::CentreFace,
        Hint::FillFrameWithCard,
        Hint::MoreLight,
        Hint::TooBright,
        Hint::AvoidGlare,
        Hint::HoldStill,
        Hint::ShowPhotoSide,
    ];

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Hint::LookAtCamera => "look_at_camera",
            Hint::OnlyOnePerson => "only_one_person",
            Hint::MoveCloser => "move_closer",
            Hint::MoveBack => "move_back",
            Hint::CentreFace => "centre_face",
            Hint::FillFrameWithCard => "fill_frame_with_card",
            Hint::MoreLight => "more_light",
            Hint::TooBright => "too_bright",
            Hint::AvoidGlare => "avoid_glare",
            Hint::HoldStill => "hold_still",
            Hint::ShowPhotoSide => "show_photo_side",
        }
    }

    /// The plain-words English text.
    pub fn text(self) -> &'static str {
        match self {
            Hint::LookAtCamera => "Look straight at the camera",
            Hint::OnlyOnePerson => "Only one person please",
            Hint::MoveCloser => "Move closer",
            Hint::MoveBack => "Move back",
            Hint::CentreFace => "Centre your face in the oval",
            Hint::FillFrameWithCard => "Fill the frame with the card",
            Hint::MoreLight => "More light please",
            Hint::TooBright => "Too bright, step out of direct light",
            Hint::AvoidGlare => "Tilt the card to avoid glare",
            Hint::HoldStill => "Hold still",
            Hint::ShowPhotoSide => "Show the side with your photo",
        }
    }

    /// The hint with this code.
    pub fn from_code(code: &str) -> Option<Hint> {
        Hint::ALL.into_iter().find(|h| h.code() == code)
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for Hint {
    /// `{"code": "move_closer", "text": "Move closer"}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Hint", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("text", self.text())?;
        st.end()
    }
}

/// Every number a check measured. Fields that do not apply to the mode (or could not be measured, e.g. the face
/// metrics when no single face was found) are `None` (`null` in JSON). Shares are 0..1, luma 0..255.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Metrics {
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Faces found in the frame (face mode) or on the card (document modes).
    pub faces: usize,
    /// Detector score of the (largest) face.
    pub face_score: Option<f64>,
    /// Face box height as a share of the frame height.
    pub face_share: Option<f64>,
    /// Distance of the face centre from the guide oval's centre, in units of the oval's radius (0 = centred,
    /// 1 = on the oval).
    pub face_offset: Option<f64>,
    /// Left-right mirror symmetry of the face's gradients (-1..1): low when the head is turned.
    pub face_symmetry: Option<f64>,
    /// Share of the guide rectangle the card covers (0..1).
    pub card_fill: Option<f64>,
    /// Variance of the Laplacian on the face (face mode) or the card (document modes).
    pub sharpness: Option<f64>,
    /// Mean luma on the face or the card.
    pub brightness: Option<f64>,
    /// Share of clipped highlights on the face or the card (glare, for the card).
    pub clipped_high: Option<f64>,
    /// Share of crushed blacks on the face or the card.
    pub clipped_low: Option<f64>,
    /// Time the check took, milliseconds.
    pub check_ms: f64,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// True when every check passed (then `hints` is empty).
    pub accepted: bool,
    /// What was checked.
    pub mode: Mode,
    /// Faces found (in the frame, or on the card in the document modes).
    pub faces: usize,
    /// Every measurement.
    pub metrics: Metrics,
    /// What to fix, most important first; empty when accepted.
    pub hints: Vec<Hint>,
}

impl Verdict {
    /// A verdict from the measured metrics and the hints found (accepted when there are none). The hints are
    /// sorted into the order a person should fix them and deduplicated.
    pub(crate) fn new(mode: Mode, metrics: Metrics, mut hints: Vec<Hint>) -> Verdict {
        hints.sort();
        hints.dedup();
        Verdict { accepted: hints.is_empty(), mode, faces: metrics.faces, metrics, hints }
    }

    /// The first hint, the one to show on a small screen.
    pub fn main_hint(&self) -> Option<Hint> {
        self.hints.first().copied()
    }

    /// Every metric as a name and a short formatted value (`-` when not measured), in name order: what `inspect`
    /// prints and the operator console's camera page shows.
    pub fn metric_rows(&self) -> Vec<(String, String)> {
        let Ok(serde_json::Value::Object(m)) = serde_json::to_value(&self.metrics) else { return Vec::new() };
        m.into_iter()
            .map(|(k, v)| {
                let shown = match v {
                    serde_json::Value::Null => "-".to_string(),
                    serde_json::Value::Number(n) => match n.as_f64() {
                        Some(f) if n.is_f64() => format!("{f:.3}"),
                        _ => n.to_string(),
                    },
                    other => other.to_string(),
                };
                (k, shown)
            })
            .collect()
    }

    /// The sharpness used to pick the best of several good frames (0 when not measured).
    pub fn sharpness(&self) -> f64 {
        self.metrics.sharpness.unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for h in Hint::ALL {
            assert!(seen.insert(h.code()), "{h:?}");
            assert!(h.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{h:?}");
            assert_eq!(Hint::from_code(h.code()), Some(h));
            assert!(!h.text().is_empty());
        }
        assert_eq!(Hint::from_code("nope"), None);
    }

    #[test]
    fn verdict_orders_hints_and_serializes_every_metric() {
        let v = Verdict::new(Mode::Face, Metrics::default(), vec![Hint::HoldStill, Hint::MoveCloser, Hint::HoldStill]);
        assert!(!v.accepted);
        assert_eq!(v.hints, [Hint::MoveCloser, Hint::HoldStill]);
        assert_eq!(v.main_hint(), Some(Hint::MoveCloser));
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["hints"][0]["code"], "move_closer");
        assert_eq!(j["mode"], "face");
        for k in ["width", "height", "faces", "face_share", "face_offset", "sharpness", "brightness", "card_fill"] {
            assert!(j["metrics"].get(k).is_some(), "{k} missing: {j}");
        }
        assert!(Verdict::new(Mode::DocumentBack, Metrics::default(), vec![]).accepted);
    }
}
