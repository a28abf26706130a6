//! Waiting for a condition with a deadline, never for a fixed time.

use std::thread;
use std::time::{Duration, Instant};

/// The first pause between two checks; it doubles after each check up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two checks: bounds how late a condition that became true is seen.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Calls `f` until it returns `Some`, and returns that value.
///
/// Checks at once, then after pauses growing from 1 ms to 50 ms, and a last time at the
/// deadline. Panics after `deadline` with a message naming `what` ("timed out after 20s
/// waiting for &lt;what&gt;"), pointing at the caller's line.
#[track_caller]
pub fn wait_until<T>(deadline: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until_or_dump(deadline, what, String::new, f)
}

/// [`wait_until`], with `dump` called on failure to add context to the panic message, such as
/// the daemon's output (`|| daemon.dump()`).
#[track_caller]
pub fn wait_until_or_dump<T>(
    deadline: Duration,
    what: &str,
    dump: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        // Read the clock before the check, so that the last check starts at the deadline.
        let elapsed = start.elapsed();
        if let Some(value) = f() {
            return value;
        }
        if elapsed >= deadline {
            break;
        }
        thread::sleep(pause.min(deadline - elapsed));
        pause = (pause * 2).min(MAX_PAUSE);
    }
    let context = dump();
    if context.is_empty() {
        panic!("timed out after {deadline:?} waiting for {what}");
    }
    panic!("timed out after {deadline:?} waiting for {what}\n{context}");
}
