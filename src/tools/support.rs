//! Runs a file tool's blocking work off the async threads, honouring cancel and timeout,
//! and bounds its output.

use tokio_util::sync::CancellationToken;

use super::{ToolContext, ToolOutcome, output};

/// Runs `work` on the blocking pool; the output is bounded to `max_output_bytes`.
///
/// `work` checks its token at safe points (between files, before writing) and returns a
/// [`ToolOutcome::cancelled`] there once it is cancelled. On cancel or timeout the token
/// is cancelled and the work awaited (it stops at its next check): a run that stopped
/// reports "cancelled" or "timed out after Ns", one that had already got past its last
/// check (a write that happened) reports what it did. Dropping this future cancels the
/// token too.
pub(crate) async fn run_blocking<F>(context: &ToolContext, work: F) -> ToolOutcome
where
    F: FnOnce(&CancellationToken) -> ToolOutcome + Send + 'static,
{
    if context.cancel.is_cancelled() {
        return ToolOutcome::cancelled("cancelled");
    }
    let token = context.cancel.child_token();
    let _stop_on_drop = token.clone().drop_guard();
    let work_token = token.clone();
    let mut task = tokio::task::spawn_blocking(move || work(&work_token));
    let (joined, stopped_because) = tokio::select! {
        biased;
        () = context.cancel.cancelled() => (None, Some("cancelled".to_string())),
        joined = &mut task => (Some(joined), None),
        () = tokio::time::sleep(context.timeout) => {
            (None, Some(format!("timed out after {}", seconds(context.timeout))))
        }
    };
    let joined = match joined {
        Some(joined) => joined,
        None => {
            token.cancel();
            task.await
        }
    };
    let mut outcome = match joined {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!(%err, "a tool's blocking task failed");
            ToolOutcome::error(format!("the tool failed unexpectedly: {err}"))
        }
    };
    if outcome.cancelled {
        outcome.output = stopped_because.unwrap_or_else(|| "cancelled".into());
    }
    outcome.output = output::bound(&outcome.output, context.max_output_bytes);
    outcome
}

/// What a blocking tool returns at a check once its token is cancelled.
pub(crate) fn stopped() -> ToolOutcome {
    ToolOutcome::cancelled("cancelled")
}

/// `2s`, `0.5s`, `1.25s`.
pub(crate) fn seconds(duration: std::time::Duration) -> String {
    let text = format!("{:.3}", duration.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}s")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tools::test_support::context;

    #[test]
    fn seconds_reads_well() {
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5s");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25s");
        assert_eq!(seconds(Duration::from_secs(120)), "120s");
    }

    #[tokio::test]
    async fn cancel_and_timeout_stop_the_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut ctx, _output) = context(dir.path());
        ctx.timeout = Duration::from_millis(100);
        let outcome = run_blocking(&ctx, |token| {
            // Waits for the stop signal, bounded so a bug cannot hang the test run.
            for _ in 0..10_000 {
                if token.is_cancelled() {
                    return stopped();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            ToolOutcome::ok("never stopped")
        })
        .await;
        assert_eq!(outcome, ToolOutcome::cancelled("timed out after 0.1s"));

        let (ctx, _output) = context(dir.path());
        ctx.cancel.cancel();
        let outcome = run_blocking(&ctx, |_| ToolOutcome::ok("ran")).await;
        assert_eq!(outcome, ToolOutcome::cancelled("cancelled"));

        // Work that got past its last check reports what it did.
        let (ctx, _output) = context(dir.path());
        let cancel = ctx.cancel.clone();
        let outcome = run_blocking(&ctx, move |_| {
            cancel.cancel();
            ToolOutcome::ok("written")
        })
        .await;
        assert_eq!(outcome, ToolOutcome::ok("written"));

        let (ctx, _output) = context(dir.path());
        let outcome = run_blocking(&ctx, |_| ToolOutcome::ok("x".repeat(100_000))).await;
        assert!(outcome.output.len() <= ctx.max_output_bytes);
        assert!(outcome.output.contains("bytes omitted"));
    }
}
