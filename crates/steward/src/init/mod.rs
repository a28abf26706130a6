//! steward as PID 1 of a container: the duties of an init (what tini and dumb-init do),
//! taken on before anything else runs.
//!
//! The process with PID 1 of a PID namespace has two duties no other process has: every
//! orphan in the namespace is reparented to it and must be reaped by it, or it stays a
//! zombie; and the kernel delivers it only the signals it has a handler for (a `docker stop`
//! SIGTERM to a PID 1 without one does nothing, and the runtime kills it after its grace
//! period).
//!
//! The supervisor cannot reap orphans itself: it waits for each of its children by pid (a
//! pidfd, then `waitpid(pid)`, see `process`), and a `waitpid(-1)` loop beside it would
//! take its own children's exit statuses before it sees them. So when steward finds itself
//! PID 1 it forks first thing in `main`, while it is one thread and before the runtime
//! exists ([`take_pid1_duties`]): the parent stays PID 1 as a small init that reaps every
//! child with `waitpid(-1)`, forwards the signals a container runtime sends to the real
//! steward, and exits with that steward's code once it ends; the child goes on as the
//! normal steward, whose own reaping is untouched. Orphans reparent to PID 1, never to
//! the supervisor.
//!
//! `STEWARD_NO_INIT=1` leaves steward as it is (for a runtime that already runs an init,
//! `docker run --init`, steward is not PID 1 anyway). Only Linux has PID namespaces; on
//! other systems [`take_pid1_duties`] does nothing. See docs/containers.md.

#[cfg_attr(target_os = "linux", path = "linux.rs")]
#[cfg_attr(not(target_os = "linux"), path = "unsupported.rs")]
mod platform;

/// The environment variable that keeps steward from acting as an init when it is PID 1.
pub const OPT_OUT: &str = "STEWARD_NO_INIT";

/// When this process is PID 1 (and [`OPT_OUT`] is not set), fork: the parent never returns
/// from here (it is the init until the child ends, then exits with its code), the child
/// returns and runs steward. Otherwise returns at once.
///
/// Call it first thing in `main`, before any thread starts: `fork` copies only the calling
/// thread.
pub fn take_pid1_duties() {
    if std::process::id() != 1 || opted_out(std::env::var_os(OPT_OUT)) {
        return;
    }
    platform::run_init();
}

/// Whether the value of [`OPT_OUT`] asks steward not to act as an init: set, and neither
/// empty nor `0`.
fn opted_out(value: Option<std::ffi::OsString>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// The exit code of an init whose child ended with `status`: the child's code, or 128 + the
/// signal that killed it (as shells report it).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn exit_code(status: Ended) -> i32 {
    match status {
        Ended::Code(code) => code,
        Ended::Signal(signal) => 128 + signal,
    }
}

/// How the real steward ended.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Code(i32),
    Signal(i32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_out_values() {
        for (value, out) in
            [(None, false), (Some(""), false), (Some("0"), false), (Some("1"), true), (Some("yes"), true)]
        {
            assert_eq!(opted_out(value.map(Into::into)), out, "{value:?}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(Ended::Code(0)), 0);
        assert_eq!(exit_code(Ended::Code(5)), 5);
        assert_eq!(exit_code(Ended::Signal(9)), 137);
        assert_eq!(exit_code(Ended::Signal(15)), 143);
    }
}
