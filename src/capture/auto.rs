//! Auto-capture: after `capture.auto_frames` consecutive accepted frames, capture the sharpest of them. Pure state
//! over [`Assessment`]s (no clock, no camera), owned by the capture thread; a refused frame or a change of mode
//! starts the count again.

use super::{Assessment, CheckedCapture, Mode};

/// The auto-capture state for one capture step.
#[derive(Debug)]
pub struct AutoCapture {
    needed: u32,
    streak: u32,
    mode: Option<Mode>,
    /// The sharpest accepted frame of the current run (the others are dropped at once: one frame kept, not N).
    best: Option<Assessment>,
}

impl AutoCapture {
    /// Captures after `needed` consecutive good frames (at least 1).
    pub fn new(needed: u32) -> AutoCapture {
        AutoCapture { needed: needed.max(1), streak: 0, mode: None, best: None }
    }

    /// Feeds one checked frame. Returns the capture (the sharpest frame of the run) when the run is complete;
    /// the state then starts over.
    pub fn push(&mut self, a: Assessment) -> Option<CheckedCapture> {
        let mode = a.verdict().mode;
        if !a.verdict().accepted || self.mode.is_some_and(|m| m != mode) {
            self.reset();
            if !a.verdict().accepted {
                return None;
            }
        }
        self.mode = Some(mode);
        self.streak += 1;
        let sharper = self.best.as_ref().is_none_or(|b| a.verdict().sharpness() > b.verdict().sharpness());
        if sharper {
            self.best = Some(a);
        }
        if self.streak < self.needed {
            return None;
        }
        let best = self.best.take();
        self.reset();
        // Only accepted assessments are ever kept as `best`, so this is always `Ok`.
        best.and_then(|b| b.into_capture().ok())
    }

    /// Consecutive good frames so far and the number needed (for a progress ring).
    pub fn progress(&self) -> (u32, u32) {
        (self.streak, self.needed)
    }

    /// Forgets the current run (the person left, the step changed).
    pub fn reset(&mut self) {
        self.streak = 0;
        self.mode = None;
        self.best = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Hint, Metrics, Verdict};
    use image::RgbImage;

    fn a(mode: Mode, accepted: bool, sharpness: f64, tag: u8) -> Assessment {
        let metrics = Metrics { sharpness: Some(sharpness), ..Default::default() };
        let hints = if accepted { vec![] } else { vec![Hint::HoldStill] };
        Assessment {
            image: RgbImage::from_pixel(2, 2, image::Rgb([tag, 0, 0])),
            verdict: Verdict::new(mode, metrics, hints),
        }
    }

    #[test]
    fn captures_the_sharpest_of_a_run_and_restarts_on_a_refusal() {
        let f = Mode::Face;
        // (accepted, sharpness, tag) sequences and the tag captured at each step (0: none).
        let seq = [
            (true, 50.0, 1, 0),
            (true, 90.0, 2, 0),
            (false, 10.0, 3, 0), // breaks the run
            (true, 60.0, 4, 0),
            (true, 80.0, 5, 0),
            (true, 70.0, 6, 5), // third in a row: the sharpest (tag 5) is captured
            (true, 99.0, 7, 0), // a new run starts
        ];
        let mut auto = AutoCapture::new(3);
        for (i, (ok, sharp, tag, want)) in seq.into_iter().enumerate() {
            let got = auto.push(a(f, ok, sharp, tag)).map(|c| c.image().get_pixel(0, 0).0[0]);
            assert_eq!(got.unwrap_or(0), want, "step {i}");
        }
        assert_eq!(auto.progress(), (1, 3));
    }

    #[test]
    fn a_mode_change_restarts_and_one_frame_suffices_when_configured() {
        let mut auto = AutoCapture::new(2);
        assert!(auto.push(a(Mode::Face, true, 1.0, 1)).is_none());
        assert!(auto.push(a(Mode::DocumentFront, true, 1.0, 2)).is_none());
        let c = auto.push(a(Mode::DocumentFront, true, 0.5, 3)).unwrap();
        assert_eq!((c.mode(), c.image().get_pixel(0, 0).0[0]), (Mode::DocumentFront, 2));
        let mut one = AutoCapture::new(0);
        assert!(one.push(a(Mode::Face, true, 1.0, 1)).is_some());
        assert!(one.push(a(Mode::Face, false, 1.0, 1)).is_none());
    }
}
