//! Waiting for an event: poll a condition until it holds, or fail with what was last seen.
//!
//! Tests wait for the thing they depend on (a job's state, a port that accepts, a
//! row that appears), never for a fixed time. The pause between two checks below is
//! the polling interval of these helpers, not synchronisation: the outcome depends
//! only on the condition, and a slow machine only makes the wait longer.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to pause between two checks of a condition.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it returns `Ok(value)` and returns that value. `Err(state)`
/// means "not yet"; if `within` passes first, the test fails naming `what` and the
/// last state seen.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        let last = match check().await {
            Ok(value) => return value,
            Err(state) => state,
        };
        assert!(
            Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `condition` until it is true, outside a runtime (the S3 test server's start);
/// fails naming `what` after `within`.
pub fn wait_until_blocking(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}
