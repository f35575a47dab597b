//! Gives freed heap back to the system once the server goes quiet.
//!
//! glibc's malloc keeps what a burst of turns freed in its arenas (one per thread that
//! allocated, up to 8 per core) and returns only the free space at the top of each, so
//! whatever the busiest minute needed stayed resident for good (issue 18: 113 MiB after
//! 100 live sessions, never lower). `malloc_trim(0)` walks every arena and releases the
//! free pages inside it too.
//!
//! A trim is scheduled when the last running turn ends and when a session retires, and
//! runs [`TRIM_DELAY`] later only if no turn ran meanwhile: a steady load never trims
//! (its pages would only be faulted in again), the end of a burst trims once. One
//! pending trim at a time per server. It runs on a blocking thread (it locks each arena
//! in turn), awaited by a task on the server's tracker; shutdown skips it. Elsewhere
//! than glibc, `trim` does nothing.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

/// How long the server must stay without turns before a trim.
pub(crate) const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Running turns, and whether a trim waits for them to stay away.
#[derive(Default)]
pub(crate) struct Quiet {
    running: AtomicUsize,
    /// Turns started so far: a trim is skipped if this moved while it waited.
    started: AtomicU64,
    pending: AtomicBool,
}

impl Quiet {
    pub fn turn_started(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether this was the last running turn (then schedule a trim).
    pub fn turn_ended(&self) -> bool {
        self.running.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Claims the pending trim: false when one is scheduled already.
    pub fn schedule(&self) -> bool {
        !self.pending.swap(true, Ordering::AcqRel)
    }

    /// The scheduled trim: waits, then trims unless turns ran meanwhile.
    pub async fn trim_when_quiet(&self, shutdown: CancellationToken) {
        let started = self.started.load(Ordering::Acquire);
        tokio::select! {
            () = tokio::time::sleep(TRIM_DELAY) => {}
            () = shutdown.cancelled() => {
                self.pending.store(false, Ordering::Release);
                return;
            }
        }
        // Cleared first: a turn ending or a session retiring from now on schedules the
        // next one.
        self.pending.store(false, Ordering::Release);
        if self.running.load(Ordering::Acquire) > 0
            || self.started.load(Ordering::Acquire) != started
        {
            return;
        }
        match tokio::task::spawn_blocking(trim).await {
            Ok(took) => tracing::debug!(micros = took.as_micros() as u64, "memory trimmed"),
            Err(err) => tracing::warn!(error = %err, "memory trim failed"),
        }
    }
}

/// Returns free heap pages to the system; how long that took.
fn trim() -> Duration {
    let started = Instant::now();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
    started.elapsed()
}
