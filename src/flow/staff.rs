//! The staff entry on the customer kiosk: the PIN pad and the operator console, as a pure state machine beside the
//! customer flow ([`step`]: state and event in, next state and effects out; time arrives in [`StaffEvent::Tick`]).
//! Runs on the UI thread (called by `crate::view`), and in plain unit tests.
//!
//! The welcome screen's "Staff" button opens the PIN pad (the glue offers it only there, so nothing of a customer
//! is ever behind it, and only when a PIN is configured). A right PIN opens the console; wrong ones count, and
//! [`StaffConfig::max_tries`] of them in a row lock the pad for [`StaffConfig::lockout`], doubling with each lock
//! up to [`StaffConfig::lockout_max`]. The pad and the console close by themselves after [`StaffConfig::idle`]
//! without a touch, so a console left open never stays open for the next customer.
//!
//! The console's actions that cannot be undone (accept or delete a request on the API, purge an application from the
//! kiosk) ask for the PIN again ([`StaffEvent::Guard`], [`StaffScreen::Confirm`]): a console left open, or opened by
//! someone looking over a shoulder, is not enough to change a customer's record. Wrong PINs there count like on the
//! pad, and a lock closes the console. The counts and the lock outlive a restart ([`LockRecord`], kept by the glue
//! in the data directory beside the queue), so pulling the plug does not buy three more tries.

use crate::secret::{STAFF_PIN_MAX, StaffPin};
use std::time::Duration;

/// The staff entry's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffConfig {
    /// The PIN; `None`: the kiosk has no operator screen (the pad never opens).
    pub pin: Option<StaffPin>,
    /// The pad or the console close after this long without a touch.
    pub idle: Duration,
    /// Wrong PINs in a row that lock the pad.
    pub max_tries: u32,
    /// How long the first lock lasts; each further lock doubles it.
    pub lockout: Duration,
    /// The longest lock.
    pub lockout_max: Duration,
}

impl StaffConfig {
    /// The default policy around `pin`: closes after `idle`, three tries, a one-minute lock doubling up to fifteen.
    pub fn new(pin: Option<StaffPin>, idle: Duration) -> StaffConfig {
        StaffConfig {
            pin,
            idle,
            max_tries: 3,
            lockout: Duration::from_secs(60),
            lockout_max: Duration::from_secs(15 * 60),
        }
    }
}

/// What the staff entry shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffScreen {
    /// Nothing: the customer flow has the screen.
    Closed,
    /// The PIN pad.
    Pin,
    /// The operator console.
    Console,
    /// The PIN pad over the console, asking again before an action that cannot be undone ([`StaffState::pending`]).
    Confirm,
}

/// A console action that needs the PIN again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    /// Accept this request on the API.
    Accept(String),
    /// Delete this request from the API.
    Delete(String),
    /// Purge this application (by reference) and its images from the kiosk.
    Purge(String),
}

impl Guarded {
    /// A stable code for the UI's wording (`accept`, `delete`, `purge`).
    pub fn code(&self) -> &'static str {
        match self {
            Guarded::Accept(_) => "accept",
            Guarded::Delete(_) => "delete",
            Guarded::Purge(_) => "purge",
        }
    }

    /// The request id or the reference it acts on.
    pub fn target(&self) -> &str {
        match self {
            Guarded::Accept(t) | Guarded::Delete(t) | Guarded::Purge(t) => t,
        }
    }
}

/// What of the staff entry outlives a restart: the wrong PINs counted, the locks so far, and how long the current
/// lock still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockRecord {
    /// Wrong PINs since the last lock or the last right PIN.
    pub failures: u32,
    /// Locks so far (each doubles the next).
    pub lockouts: u32,
    /// What is left of the current lock (zero: not locked).
    pub locked_for: Duration,
}

/// What the PIN pad says under the dots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinNotice {
    /// Nothing to say.
    None,
    /// The last PIN was wrong; this many tries are left before the pad locks.
    Wrong {
        /// Tries left.
        tries_left: u32,
    },
    /// Too many wrong PINs: the pad is locked for this many more seconds.
    Locked {
        /// Seconds left, rounded up.
        seconds: u64,
    },
}

/// The staff entry's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffState {
    /// The policy.
    pub config: StaffConfig,
    /// What is shown.
    pub screen: StaffScreen,
    /// The digits typed on the pad (zeroed when dropped).
    typed: crate::secret::PinDigits,
    /// Wrong PINs since the last lock or the last right PIN.
    failures: u32,
    /// Locks so far (each doubles the next).
    lockouts: u32,
    /// The pad refuses digits until then.
    locked_until: Option<Duration>,
    /// The last PIN entered was wrong (cleared by the next digit).
    wrong: bool,
    /// The action waiting for the PIN again (on [`StaffScreen::Confirm`]).
    pending: Option<Guarded>,
    /// The last touch on the pad or the console.
    last_input: Duration,
    /// The latest time seen.
    now: Duration,
}

/// Something that happened to the staff entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffEvent {
    /// The welcome screen's "Staff" button.
    Open,
    /// A digit key of the pad (0 to 9).
    Digit(u8),
    /// The pad's erase key.
    Erase,
    /// The pad's enter key: check the PIN.
    Enter,
    /// The pad's cancel key: back to the welcome screen.
    Cancel,
    /// The console's exit button: back to the welcome screen.
    Exit,
    /// Any other touch on the console (keeps it open).
    Touch,
    /// The console asks to carry out an action that needs the PIN again.
    Guard(Guarded),
    /// The clock (the same as the customer flow's).
    Tick {
        /// Time since the kiosk started.
        now: Duration,
    },
}

/// An intent for the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffEffect {
    /// The console opened: load what it shows.
    ConsoleOpened,
    /// The console closed: stop what it runs (its camera preview).
    ConsoleClosed,
    /// The PIN was given again: carry out the action.
    Authorised(Guarded),
    /// The wrong-PIN counts or the lock changed: keep [`StaffState::lock_record`] for the next start.
    LockChanged,
}

impl StaffState {
    /// Closed, nothing typed, no lock.
    pub fn new(config: StaffConfig) -> StaffState {
        StaffState {
            config,
            screen: StaffScreen::Closed,
            typed: crate::secret::PinDigits::default(),
            failures: 0,
            lockouts: 0,
            locked_until: None,
            wrong: false,
            pending: None,
            last_input: Duration::ZERO,
            now: Duration::ZERO,
        }
    }

    /// The same state with the counts and the lock of an earlier run; the lock runs from now for what was left of
    /// it, at most [`StaffConfig::lockout_max`] (a clock set back cannot lengthen it).
    pub fn restored(mut self, record: LockRecord) -> StaffState {
        self.failures = record.failures.min(self.config.max_tries.saturating_sub(1));
        self.lockouts = record.lockouts.min(16);
        self.locked_until =
            (!record.locked_for.is_zero()).then(|| self.now + record.locked_for.min(self.config.lockout_max));
        self
    }

    /// What must outlive a restart, as of now.
    pub fn lock_record(&self) -> LockRecord {
        LockRecord {
            failures: self.failures,
            lockouts: self.lockouts,
            locked_for: self.locked_until.map_or(Duration::ZERO, |u| u.saturating_sub(self.now)),
        }
    }

    /// The action waiting for the PIN again, if the pad asks for it.
    pub fn pending(&self) -> Option<&Guarded> {
        self.pending.as_ref()
    }

    /// Whether the kiosk offers the staff button (a PIN is configured).
    pub fn available(&self) -> bool {
        self.config.pin.is_some()
    }

    /// How many digits are typed (the pad shows that many dots, never the digits).
    pub fn typed_len(&self) -> usize {
        self.typed.chars().count()
    }

    /// What the pad says.
    pub fn notice(&self) -> PinNotice {
        if let Some(until) = self.locked_until.filter(|u| *u > self.now) {
            let left = until.saturating_sub(self.now);
            return PinNotice::Locked { seconds: left.as_millis().div_ceil(1000) as u64 };
        }
        if self.wrong {
            return PinNotice::Wrong { tries_left: self.config.max_tries.saturating_sub(self.failures) };
        }
        PinNotice::None
    }

    fn on_pad(&self) -> bool {
        matches!(self.screen, StaffScreen::Pin | StaffScreen::Confirm)
    }

    fn locked(&self) -> bool {
        self.locked_until.is_some_and(|u| u > self.now)
    }

    /// The length of the next lock: `lockout` doubled for each earlier lock, capped.
    fn next_lock(&self) -> Duration {
        let factor = 1u32.checked_shl(self.lockouts.min(16)).unwrap_or(u32::MAX);
        self.config.lockout.saturating_mul(factor).min(self.config.lockout_max)
    }
}

/// Applies one event: the next state and the effects for the glue, in order.
pub fn step(state: &StaffState, event: StaffEvent) -> (StaffState, Vec<StaffEffect>) {
    let mut s = state.clone();
    let mut fx = Vec::new();
    if !matches!(event, StaffEvent::Tick { .. }) {
        s.last_input = s.now;
    }
    match event {
        StaffEvent::Tick { now } => {
            if now < s.now {
                return (s, fx);
            }
            s.now = now;
            if s.locked_until.is_some_and(|u| u <= now) {
                s.locked_until = None;
                s.wrong = false;
            }
            if s.screen != StaffScreen::Closed && now.saturating_sub(s.last_input) >= s.config.idle {
                close(&mut s, &mut fx);
            }
        }
        StaffEvent::Open => {
            if s.screen == StaffScreen::Closed && s.available() {
                s.screen = StaffScreen::Pin;
                s.typed.clear();
                s.wrong = false;
            }
        }
        StaffEvent::Digit(d) => {
            if s.on_pad() && d <= 9 && !s.locked() && s.typed_len() < STAFF_PIN_MAX {
                s.typed.push(char::from(b'0' + d));
                s.wrong = false;
            }
        }
        StaffEvent::Erase => {
            if s.on_pad() {
                s.typed.pop();
            }
        }
        StaffEvent::Enter => {
            if s.on_pad() && !s.locked() && !s.typed.is_empty() {
                enter(&mut s, &mut fx);
            }
        }
        StaffEvent::Cancel if s.screen == StaffScreen::Confirm => {
            // Back to the console, nothing done.
            s.screen = StaffScreen::Console;
            s.pending = None;
            s.typed.clear();
            s.wrong = false;
        }
        StaffEvent::Cancel | StaffEvent::Exit => {
            if s.screen != StaffScreen::Closed {
                close(&mut s, &mut fx);
            }
        }
        StaffEvent::Touch => {}
        StaffEvent::Guard(action) => {
            if s.screen == StaffScreen::Console {
                s.screen = StaffScreen::Confirm;
                s.pending = Some(action);
                s.typed.clear();
                s.wrong = false;
            }
        }
    }
    (s, fx)
}

fn enter(s: &mut StaffState, fx: &mut Vec<StaffEffect>) {
    let right = s.config.pin.as_ref().is_some_and(|p| p.matches(&s.typed));
    s.typed.clear();
    if right {
        if s.failures != 0 || s.lockouts != 0 {
            fx.push(StaffEffect::LockChanged);
        }
        s.failures = 0;
        s.lockouts = 0;
        s.wrong = false;
        let confirming = s.screen == StaffScreen::Confirm;
        s.screen = StaffScreen::Console;
        match s.pending.take() {
            Some(action) if confirming => fx.push(StaffEffect::Authorised(action)),
            _ => fx.push(StaffEffect::ConsoleOpened),
        }
        return;
    }
    s.failures += 1;
    s.wrong = true;
    fx.push(StaffEffect::LockChanged);
    if s.failures >= s.config.max_tries {
        s.locked_until = Some(s.now + s.next_lock());
        s.lockouts += 1;
        s.failures = 0;
        if s.screen == StaffScreen::Confirm {
            // Whoever is at the console does not know the PIN: close it, the lock stays on the pad.
            close(s, fx);
        }
    }
}

fn close(s: &mut StaffState, fx: &mut Vec<StaffEffect>) {
    if matches!(s.screen, StaffScreen::Console | StaffScreen::Confirm) {
        fx.push(StaffEffect::ConsoleClosed);
    }
    s.screen = StaffScreen::Closed;
    s.pending = None;
    s.typed.clear();
    s.wrong = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(90);

    fn state() -> StaffState {
        StaffState::new(StaffConfig::new(Some(StaffPin::parse("246813").unwrap()), IDLE))
    }

    fn run(s: &StaffState, events: &[StaffEvent]) -> (StaffState, Vec<StaffEffect>) {
        let mut s = s.clone();
        let mut all = Vec::new();
        for e in events {
            let (next, fx) = step(&s, e.clone());
            s = next;
            all.extend(fx);
        }
        (s, all)
    }

    fn digits(pin: &str) -> Vec<StaffEvent> {
        let mut v: Vec<StaffEvent> = pin.bytes().map(|b| StaffEvent::Digit(b - b'0')).collect();
        v.push(StaffEvent::Enter);
        v
    }

    fn at(secs: u64) -> StaffEvent {
        StaffEvent::Tick { now: Duration::from_secs(secs) }
    }

    #[test]
    fn a_dump_of_the_entry_state_never_shows_the_digits() {
        let (s, _) =
            run(&state(), &[StaffEvent::Open, StaffEvent::Digit(2), StaffEvent::Digit(4), StaffEvent::Digit(6)]);
        let dump = format!("{s:?}");
        assert!(!dump.contains("246"), "{dump}");
        assert!(dump.contains("3 typed"), "{dump}");
    }

    #[test]
    fn pad_and_console_transitions() {
        use StaffEvent::*;
        use StaffScreen as S;
        let open = |e: &[StaffEvent]| [&[Open][..], e].concat();
        let cases: Vec<(&str, Vec<StaffEvent>, S, Vec<StaffEffect>)> = vec![
            ("opens the pad", vec![Open], S::Pin, vec![]),
            ("the right pin opens the console", open(&digits("246813")), S::Console, vec![StaffEffect::ConsoleOpened]),
            ("a wrong pin stays on the pad", open(&digits("1357")), S::Pin, vec![StaffEffect::LockChanged]),
            ("cancel closes the pad", open(&[Digit(2), Cancel]), S::Closed, vec![]),
            (
                "exit closes the console",
                open(&[digits("246813"), vec![Exit]].concat()),
                S::Closed,
                vec![StaffEffect::ConsoleOpened, StaffEffect::ConsoleClosed],
            ),
            (
                "erase then the right digits",
                open(&[vec![Digit(9), Erase], digits("246813")].concat()),
                S::Console,
                vec![StaffEffect::ConsoleOpened],
            ),
            ("enter with nothing typed does nothing", open(&[Enter]), S::Pin, vec![]),
            ("digits while closed do nothing", digits("246813"), S::Closed, vec![]),
            (
                "a longer pin that starts right is wrong",
                open(&digits("2468130")),
                S::Pin,
                vec![StaffEffect::LockChanged],
            ),
        ];
        for (name, events, screen, effects) in cases {
            let (s, fx) = run(&state(), &events);
            assert_eq!((s.screen, fx), (screen, effects), "{name}");
            assert_eq!(s.typed_len(), 0, "{name}: a finished or closed entry leaves no digits behind");
        }
    }

    #[test]
    fn no_pin_configured_means_no_pad() {
        let s = StaffState::new(StaffConfig::new(None, IDLE));
        assert!(!s.available());
        let (s, _) = run(&s, &[StaffEvent::Open]);
        assert_eq!(s.screen, StaffScreen::Closed);
    }

    #[test]
    fn the_pad_shows_dots_and_accepts_at_most_the_longest_pin() {
        let (s, _) = run(&state(), &[StaffEvent::Open, StaffEvent::Digit(1), StaffEvent::Digit(2)]);
        assert_eq!(s.typed_len(), 2);
        let many: Vec<StaffEvent> =
            std::iter::once(StaffEvent::Open).chain((0..20).map(|_| StaffEvent::Digit(7))).collect();
        assert_eq!(run(&state(), &many).0.typed_len(), STAFF_PIN_MAX);
        assert_eq!(run(&state(), &[StaffEvent::Open, StaffEvent::Digit(10)]).0.typed_len(), 0);
    }

    #[test]
    fn wrong_pins_count_down_then_lock_with_doubling_locks() {
        let (s, _) = run(&state(), &[vec![StaffEvent::Open], digits("1111")].concat());
        assert_eq!(s.notice(), PinNotice::Wrong { tries_left: 2 });
        let (s, _) = run(&s, &digits("2222"));
        assert_eq!(s.notice(), PinNotice::Wrong { tries_left: 1 });
        let (s, _) = run(&s, &digits("3333"));
        assert_eq!(s.notice(), PinNotice::Locked { seconds: 60 });
        // Locked: even the right PIN is not taken, and digits are ignored.
        let (s, fx) = run(&s, &[vec![at(30)], digits("246813")].concat());
        assert_eq!((s.screen, fx, s.typed_len()), (StaffScreen::Pin, vec![], 0));
        assert_eq!(s.notice(), PinNotice::Locked { seconds: 30 });
        // The lock ends; three more wrong ones lock for twice as long.
        let (s, _) = run(&s, &[vec![at(60)], digits("1"), digits("2"), digits("3")].concat());
        assert_eq!(s.notice(), PinNotice::Locked { seconds: 120 });
        // The pad closed while locked (nobody touched it); after the lock, the right PIN opens and resets the count.
        let (s, _) = run(&s, &[at(180)]);
        assert_eq!(s.screen, StaffScreen::Closed);
        let (s, fx) = run(&s, &[vec![StaffEvent::Open], digits("246813")].concat());
        assert_eq!(
            (s.screen, fx),
            (StaffScreen::Console, vec![StaffEffect::LockChanged, StaffEffect::ConsoleOpened]),
            "the reset counts are kept too"
        );
        assert_eq!(s.notice(), PinNotice::None);
        assert_eq!(s.lock_record(), LockRecord::default());
    }

    #[test]
    fn actions_that_cannot_be_undone_ask_for_the_pin_again() {
        use StaffEvent::*;
        let console = run(&state(), &[vec![Open], digits("246813")].concat()).0;
        let purge = Guarded::Purge("K7-ABC".into());
        // The right PIN carries it out and returns to the console.
        let (s, fx) = run(&console, &[vec![Guard(purge.clone())], digits("246813")].concat());
        assert_eq!(
            (s.screen, fx, s.pending()),
            (StaffScreen::Console, vec![StaffEffect::Authorised(purge.clone())], None)
        );
        // Cancel returns to the console with nothing done.
        let (s, fx) = run(&console, &[Guard(Guarded::Delete("r1".into())), Digit(1), Cancel]);
        assert_eq!((s.screen, fx, s.typed_len()), (StaffScreen::Console, vec![], 0));
        // A wrong PIN is counted like on the pad; the third locks the pad and closes the console.
        let (s, fx) = run(&console, &[vec![Guard(Guarded::Accept("r2".into()))], digits("1111")].concat());
        assert_eq!(
            (s.screen, fx, s.notice()),
            (StaffScreen::Confirm, vec![StaffEffect::LockChanged], PinNotice::Wrong { tries_left: 2 })
        );
        let (s, fx) = run(&s, &[digits("2222"), digits("3333")].concat());
        assert_eq!(s.screen, StaffScreen::Closed);
        assert_eq!(fx, vec![StaffEffect::LockChanged, StaffEffect::LockChanged, StaffEffect::ConsoleClosed]);
        assert_eq!(run(&s, &[Open]).0.notice(), PinNotice::Locked { seconds: 60 });
        // Only from the console: the pad or a closed entry ignore it.
        assert_eq!(run(&state(), &[Guard(purge.clone())]).0.screen, StaffScreen::Closed);
        assert_eq!(run(&state(), &[Open, Guard(purge)]).0.pending(), None);
    }

    #[test]
    fn counts_and_locks_survive_a_restart_and_a_clock_set_back() {
        let (s, _) = run(&state(), &[vec![at(100), StaffEvent::Open], digits("1"), digits("2")].concat());
        let record = s.lock_record();
        assert_eq!(record, LockRecord { failures: 2, lockouts: 0, locked_for: Duration::ZERO });
        // A restart: the clock starts again at zero; one more wrong PIN locks.
        let fresh = run(&state(), &[at(3)]).0.restored(record);
        let (s, _) = run(&fresh, &[vec![StaffEvent::Open], digits("3")].concat());
        assert_eq!(s.notice(), PinNotice::Locked { seconds: 60 });
        let (s, _) = run(&s, &[at(23)]);
        assert_eq!(s.lock_record(), LockRecord { failures: 0, lockouts: 1, locked_for: Duration::from_secs(40) });
        // Restarted while locked: locked for what was left, and the next lock doubles.
        let again = state().restored(s.lock_record());
        assert_eq!(run(&again, &[StaffEvent::Open]).0.notice(), PinNotice::Locked { seconds: 40 });
        // A record claiming a longer lock than the policy allows is capped.
        let long = LockRecord { failures: 99, lockouts: 99, locked_for: Duration::from_secs(86_400) };
        let capped = state().restored(long);
        assert_eq!(run(&capped, &[StaffEvent::Open]).0.notice(), PinNotice::Locked { seconds: 15 * 60 });
        assert_eq!(capped.lock_record().failures, 2);
    }

    #[test]
    fn the_lock_outlasts_closing_the_pad_and_is_capped() {
        let mut s = state();
        for round in 0..8u64 {
            let start = round * 2000;
            let (next, _) = run(
                &s,
                &[vec![at(start), StaffEvent::Open], digits("0"), digits("0"), digits("0"), vec![StaffEvent::Cancel]]
                    .concat(),
            );
            s = next;
            let (reopened, _) = run(&s, &[StaffEvent::Open]);
            let PinNotice::Locked { seconds } = reopened.notice() else { panic!("round {round}: not locked") };
            assert!(seconds <= 15 * 60, "round {round}: {seconds}");
            assert_eq!(seconds, (60u64 << round).min(15 * 60), "round {round}");
        }
    }

    #[test]
    fn pad_and_console_close_when_left_alone() {
        let (s, _) = run(&state(), &[at(10), StaffEvent::Open]);
        let (s, _) = run(&s, &[at(10 + 89)]);
        assert_eq!(s.screen, StaffScreen::Pin);
        let (s, _) = run(&s, &[at(10 + 90)]);
        assert_eq!(s.screen, StaffScreen::Closed);

        let (s, _) = run(&state(), &[vec![at(5), StaffEvent::Open], digits("246813")].concat());
        let (s, _) = run(&s, &[at(60), StaffEvent::Touch, at(60 + 89)]);
        assert_eq!(s.screen, StaffScreen::Console, "a touch keeps the console open");
        let (s, fx) = run(&s, &[at(60 + 90)]);
        assert_eq!((s.screen, fx), (StaffScreen::Closed, vec![StaffEffect::ConsoleClosed]));
    }
}
