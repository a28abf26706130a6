//! Shared by the modules: a steward of this crate's binary on a config in its own temp dir
//! (testkit's [`Steward`] harness), and small waits on files and pids.

use std::path::Path;

pub use testkit::{
    child_cmd, pid_alive, read_pidfile, testchild, toml_str as q, wait_until, LogEvent, Steward, DEADLINE,
};

/// The steward binary cargo built for these tests.
pub const STEWARD: &str = env!("CARGO_BIN_EXE_steward");

/// `steward run` on `config` (see [`Steward::start`]).
#[track_caller]
pub fn start(config: &str) -> Steward {
    Steward::start(STEWARD, config)
}

/// `steward run` on `config` with more arguments.
#[track_caller]
pub fn start_with(config: &str, extra_args: &[&str]) -> Steward {
    Steward::start_with(STEWARD, config, extra_args)
}

/// Lines in a file (0 if it does not exist yet).
pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

/// Waits until `path` holds a pid written by the test child, and returns it.
#[track_caller]
pub fn wait_pidfile(path: &Path) -> u32 {
    wait_until(DEADLINE, &format!("a pid in {}", path.display()), || read_pidfile(path))
}

/// Waits until `pid` is gone.
#[track_caller]
pub fn wait_gone(pid: u32, what: &str) {
    wait_until(DEADLINE, &format!("{what} (pid {pid}) to be gone"), || (!pid_alive(pid)).then_some(()));
}

/// The URL in the message of a listener's event ("... on http://127.0.0.1:4321/metrics"): the
/// listeners bind port 0, and their events are where the port is told.
pub fn url_in(event: &LogEvent) -> Option<String> {
    let word =
        event.message.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://"))?;
    Some(word.to_owned())
}

/// The address of `[metrics] listen = "127.0.0.1:0"`, once its listener said where it is.
#[track_caller]
pub fn metrics_addr(s: &Steward) -> std::net::SocketAddr {
    let listening = s.wait_for_event("the metrics listener", |e| e.is_daemon("metrics"));
    let url = url_in(&listening).unwrap_or_else(|| panic!("no URL in {listening:?}"));
    url.strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not http://ADDR/metrics: {url}"))
}
