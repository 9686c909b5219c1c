//! Retry timing, as pure functions of their inputs: jittered exponential backoff with `Retry-After` honoured and
//! capped, and a global retry budget (a token bucket) so a storm of 5xx answers never becomes a tight loop. Time is
//! passed in as `Instant` (monotonic), never read from the wall clock. Used by the uploader thread.

use std::time::{Duration, Instant};

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Longest delay, including a server's `Retry-After`.
    pub cap: Duration,
}

impl Backoff {
    /// The delay before retry number `failures` (1 = after the first failure). `jitter` in `[0, 1)` picks a point
    /// in the upper half of the exponential window ("equal jitter"), so retries spread out but never come sooner
    /// than half the nominal delay. A `Retry-After` longer than that wins, up to the cap.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let nominal = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let j = jitter.clamp(0.0, 1.0);
        let jittered = nominal / 2 + nominal.mul_f64(j * 0.5);
        let d = match retry_after {
            Some(ra) if ra > jittered => ra,
            _ => jittered,
        };
        d.min(self.cap)
    }

    /// The bounds `[min, max]` any delay for retry `failures` without `Retry-After` falls in (for tests and checks).
    pub fn bounds(&self, failures: u32) -> (Duration, Duration) {
        let exp = failures.saturating_sub(1).min(30);
        let nominal = self.base.saturating_mul(1u32 << exp).min(self.cap);
        (nominal / 2, nominal)
    }
}

/// A token bucket shared by every retry: `capacity` retries at once, then one more every `refill`.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    capacity: f64,
    tokens: f64,
    refill: Duration,
    last: Instant,
}

impl RetryBudget {
    /// A full bucket.
    pub fn new(capacity: u32, refill: Duration, now: Instant) -> RetryBudget {
        let capacity = f64::from(capacity.max(1));
        RetryBudget { capacity, tokens: capacity, refill: refill.max(Duration::from_millis(1)), last: now }
    }

    fn top_up(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() / self.refill.as_secs_f64()).min(self.capacity);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.top_up(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.refill.mul_f64(1.0 - self.tokens))
        }
    }

    /// Tokens available now.
    pub fn available(&mut self, now: Instant) -> f64 {
        self.top_up(now);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn delays_grow_jitter_and_cap() {
        let b = Backoff { base: S(2), cap: S(900) };
        // (failures, retry_after, jitter, expected)
        let table: &[(u32, Option<Duration>, f64, Duration)] = &[
            (1, None, 0.0, S(1)),
            (1, None, 1.0, S(2)),
            (2, None, 0.0, S(2)),
            (3, None, 1.0, S(8)),
            (10, None, 1.0, S(900)),
            (10, None, 0.0, S(450)),
            (100, None, 1.0, S(900)),
            (1, Some(S(30)), 0.5, S(30)),
            (1, Some(S(10_000)), 0.5, S(900)),
            (5, Some(S(1)), 1.0, S(32)),
        ];
        for &(f, ra, j, want) in table {
            assert_eq!(b.delay(f, ra, j), want, "failures {f} retry_after {ra:?} jitter {j}");
        }
        let mut rng = fastrand::Rng::with_seed(3);
        for f in 1..40 {
            let (lo, hi) = b.bounds(f);
            for _ in 0..20 {
                let d = b.delay(f, None, rng.f64());
                assert!(d >= lo && d <= hi, "{f}: {d:?} outside {lo:?}..{hi:?}");
            }
        }
    }

    #[test]
    fn budget_limits_a_storm() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(3, S(5), t0);
        for _ in 0..3 {
            assert!(b.try_take(t0).is_ok());
        }
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait <= S(5) && wait > S(4), "{wait:?}");
        assert!(b.try_take(t0 + S(5)).is_ok());
        assert!(b.try_take(t0 + S(6)).is_err());
        // Over a long storm, retries are limited to the refill rate.
        let mut taken = 0;
        for ms in (0..600_000u64).step_by(100) {
            if b.try_take(t0 + S(6) + Duration::from_millis(ms)).is_ok() {
                taken += 1;
            }
        }
        assert!((119..=121).contains(&taken), "{taken} retries in 10 minutes at one per 5 s");
    }
}
