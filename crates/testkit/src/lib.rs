//! Test kit for steward: a cross-platform fake child, an HTTP test server with a load client,
//! and a harness for running the daemon in integration tests. Never shipped (`publish = false`).
//!
//! - [`testchild`]: path of the `steward-testchild` binary, a small program whose behaviour is
//!   chosen by flags (`--exit N`, `--sleep D`, `--trap-term`, `--spawn-grandchild`,
//!   `--write-lines N`, ...; run it with `--help` for the list). Use it instead of shell scripts,
//!   which do not run on Windows.
//! - [`Daemon`]: runs a binary with its output in files, in its own process group, and kills the
//!   whole tree and reaps it on `Drop`, so a failed test leaves nothing running.
//! - [`Steward`]: a `steward run` in its own temp dir, stopped through its API, watched through
//!   its JSON log events ([`Steward::wait_for_event`]) and `GET /v1/events`; with
//!   [`child_cmd`] and [`toml_str`] to write its config.
//! - [`wait_until`] / [`wait_until_or_dump`]: the one way to wait for a condition, with a
//!   deadline and a failure message that says what was awaited (and the daemon's output).
//! - [`pid_alive`], [`read_pidfile`], [`write_pidfile`]: process and pidfile checks.
//! - [`lines`]: the line format of `--write-lines`, to build expected output and to check
//!   captured logs line by line.
//! - [`testserver`]: path of the `steward-testserver` binary, the HTTP server of the
//!   rolling-restart tests: it serves the sockets steward passes (or binds its own), says when
//!   it is ready, answers with its pid, and drains on the stop signal (`--help` for its flags).
//! - [`load`]: K workers of HTTP load against a test server, counting refused, reset, timed
//!   out and bad requests, and recording which pid answered when (`steward-loadgen` is its
//!   command line).
//! - [`flags`]: the command-line reading the binaries share.
//! - [`release`]: signing keys, archives (hostile ones too), manifests and a release server
//!   that misbehaves on demand, for the deploy tests.
//! - [`browser`]: a headless Chromium driven through chromedriver, for the dashboard's tests
//!   (skipped when Chromium is missing), with screenshots saved as artifacts.
//! - [`receiver`]: a fake Loki, Elasticsearch `_bulk` and OTLP/HTTP logs receiver (HTTP or
//!   HTTPS with mTLS) that applies the real servers' rules (Loki's duplicate and ordering rules,
//!   Elasticsearch's 409s), fails on demand (statuses, 429 with `Retry-After`, slow answers,
//!   resets, refused connections) and lets a test wait for what it stored; for the log shipper.
//! - [`rsyslog`]: a real rsyslogd receiving syslog over TCP and TLS (skipped when rsyslog is not
//!   installed), with what it received read back field by field.
//! - [`pki`]: a CA, server and client certificates made for one test, as PEM and rustls configs.
//! - [`tempfile`] is re-exported: each test takes its own `tempfile::TempDir`.

pub use tempfile;

pub mod browser;
mod daemon;
pub mod flags;
pub mod lines;
pub mod load;
mod locate;
mod pidfile;
pub mod pki;
pub mod receiver;
pub mod release;
pub mod rsyslog;
mod steward;
mod wait;

// Platform code is chosen once, here: `sys/unix.rs` uses process groups, `waitid` and
// `/proc` (or `ps`); `sys/windows.rs` uses process handles. Both export the same functions.
#[cfg_attr(unix, path = "sys/unix.rs")]
#[cfg_attr(windows, path = "sys/windows.rs")]
mod sys;

use std::time::Duration;

pub use daemon::Daemon;
pub use locate::{testchild, testserver};
pub use pidfile::{read_pidfile, write_pidfile};
pub use steward::{child_cmd, describe, parse_events, toml_str, LogEvent, Steward};
pub use sys::pid_alive;
pub use wait::{wait_until, wait_until_or_dump};

/// A generous default deadline for things that should happen "at once": long enough for a
/// loaded two-core CI machine or Wine, short enough that a hang fails the test in reasonable
/// time. Tests waiting on something slow by design pass their own.
pub const DEADLINE: Duration = Duration::from_secs(20);
