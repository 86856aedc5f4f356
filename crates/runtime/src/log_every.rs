//! Log lines for events a client can cause at any rate (refused
//! connections, timeouts, failed authentication): at most one line per
//! period for each kind, carrying how many were left out since the last
//! one, so a flood is visible without filling the disk. Hand-written: the
//! `tracing` ecosystem has no maintained rate limiter for events, and this
//! is one mutex and two numbers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One kind of event, logged at most once per `period`.
#[derive(Debug)]
pub struct LogEvery {
    period: Duration,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// When the last line was written; None before the first.
    last: Option<Instant>,
    /// Events since then that wrote no line.
    left_out: u64,
}

impl LogEvery {
    pub const fn new(period: Duration) -> Self {
        Self { period, state: Mutex::new(Window { last: None, left_out: 0 }) }
    }

    /// Count one event. `Some(n)` when a line is due now: `n` events were
    /// left out since the last line (the caller writes it); None otherwise.
    pub fn due(&self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Option<u64> {
        let mut w = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match w.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                w.left_out += 1;
                None
            }
            _ => {
                w.last = Some(now);
                Some(std::mem::take(&mut w.left_out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_reports_what_it_left_out() {
        let every = LogEvery::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(every.due_at(t0), Some(0), "the first event is logged");
        for i in 1..=99 {
            assert_eq!(every.due_at(t0 + Duration::from_millis(i * 50)), None);
        }
        assert_eq!(every.due_at(t0 + Duration::from_secs(10)), Some(99), "the next line counts the 99 left out");
        assert_eq!(every.due_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(every.due_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
