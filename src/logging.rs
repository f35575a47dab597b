//! Log throttling: a fault that repeats on every request (a broken disk, a flood of
//! refused connections) is logged once per window with how many were suppressed, so it
//! cannot flood the log or the disk it is failing on.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Allows one log line per `window`; counts the rest.
#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    /// When the last line was allowed, and how many were suppressed since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    pub const fn new(window: Duration) -> Self {
        Self {
            window,
            state: Mutex::new((None, 0)),
        }
    }

    /// Some(number suppressed since the last allowed line) when a line may be logged
    /// now; None when it must be suppressed (and is counted).
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let Ok(mut state) = self.state.lock() else {
            return Some(0);
        };
        let (last, suppressed) = &mut *state;
        match last {
            Some(at) if now.duration_since(*at) < self.window => {
                *suppressed += 1;
                None
            }
            _ => {
                *last = Some(now);
                Some(std::mem::take(suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_with_the_count_of_the_rest() {
        let throttle = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(throttle.allow_at(start), Some(0));
        assert_eq!(throttle.allow_at(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow_at(start + Duration::from_secs(9)), None);
        assert_eq!(
            throttle.allow_at(start + Duration::from_secs(10)),
            Some(2),
            "the next window's line says how many were suppressed"
        );
        assert_eq!(throttle.allow_at(start + Duration::from_secs(11)), None);
    }
}
