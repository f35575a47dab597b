//! Time as microseconds since the Unix epoch: exact, ordered, and cheap to store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// A duration in whole microseconds, saturating (durations longer than ~292,000 years).
pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Timestamp {
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(micros)
            .unwrap_or(0);
        Timestamp(micros)
    }

    pub fn from_unix(seconds: i64, nanos: i32) -> Self {
        Timestamp(
            seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(nanos) / 1_000),
        )
    }

    /// `d` later, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(micros(d)))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC, e.g. `2026-11-22T09:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        jiff::Timestamp::from_microsecond(self.0)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| format!("@{}us", self.0))
    }

    /// Whole seconds and the remaining nanoseconds, as protobuf Timestamps want them.
    pub fn to_unix(self) -> (i64, i32) {
        let seconds = self.0.div_euclid(1_000_000);
        let nanos = (self.0.rem_euclid(1_000_000) * 1_000) as i32;
        (seconds, nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn unix_round_trip_keeps_microseconds_including_before_epoch() {
        for micros in [0, 1, 1_234_567, -1, -1_500_000, 1_700_000_000_123_456] {
            let (s, n) = Timestamp(micros).to_unix();
            assert!((0..1_000_000_000).contains(&n));
            assert_eq!(Timestamp::from_unix(s, n), Timestamp(micros));
        }
    }
}
