//! Time as the scheduler sees it. Injected, so tests can cross minute boundaries, time
//! zones and DST changes without waiting for real minutes.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;

use crate::domain::Timestamp;

#[async_trait::async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Returns once `now() >= deadline`.
    async fn sleep_until(&self, deadline: Timestamp);

    /// Returns once `duration` has passed by this clock.
    async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now().plus(duration)).await;
    }
}

/// The wall clock.
pub struct SystemClock;

/// The longest single sleep: the wall clock may be set or jump (suspend, NTP), so the
/// deadline is checked again at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(30);

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        loop {
            let left = deadline.0 - Timestamp::now().0;
            if left <= 0 {
                return;
            }
            let left = Duration::from_micros(left as u64).min(MAX_SLEEP);
            // Round up so we wake at or after the deadline, not a hair before it.
            tokio::time::sleep(left + Duration::from_millis(1)).await;
        }
    }
}

/// A clock that moves only when told to: for tests of cron timing.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
    changed: watch::Sender<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
            changed: watch::channel(start).0,
        }
    }

    /// Moves the clock to `time` (never backwards) and wakes the sleepers it reaches.
    pub fn set(&self, time: Timestamp) {
        let now = {
            let Ok(mut now) = self.now.lock() else {
                return;
            };
            *now = (*now).max(time);
            *now
        };
        self.changed.send_replace(now);
    }

    pub fn advance(&self, by: Duration) {
        self.set(self.now().plus(by));
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now.lock().map(|now| *now).unwrap_or_default()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let mut changed = self.changed.subscribe();
        // wait_for checks the current value first, so a set() before this call counts.
        let _ = changed.wait_for(|now| *now >= deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_clock_reaches_their_deadline() {
        let clock = ManualClock::new(Timestamp(1_000));
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(Timestamp(5_000)).await })
        };
        clock.set(Timestamp(4_999));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_micros(1));
        tokio::time::timeout(Duration::from_secs(10), sleeper)
            .await
            .expect("woke")
            .expect("joined");
        clock.set(Timestamp(0));
        assert_eq!(clock.now(), Timestamp(5_000), "never moves backwards");
    }
}
