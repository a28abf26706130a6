//! Make a Rust program its own native service: it runs under the Windows Service Control
//! Manager, systemd or launchd, answers their protocols, and runs the same code from a
//! console.
//!
//! ```no_run
//! use steward_service::{Control, RunOptions};
//!
//! fn main() -> std::process::ExitCode {
//!     steward_service::run(RunOptions::new("myapp"), |ctx| {
//!         // Starting may take a while: the manager sees rising checkpoints meanwhile.
//!         ctx.ready(); // Running for the SCM, READY=1 for systemd
//!         for request in ctx.controls() {
//!             match request.control() {
//!                 Control::Stop(_) => break,
//!                 Control::Reload => { /* re-read the configuration */ }
//!                 _ => {}
//!             }
//!             request.ack();
//!         }
//!         Ok(()) // stopping is reported until this returns
//!     })
//! }
//! ```
//!
//! The crate is being built. What exists:
//! - [`lifecycle`]: the life of a service as its manager sees it (checkpoints that rise
//!   while the program works, budgets, Pause, Continue, Reload and Stop, the exit code), as a
//!   pure state machine that the platform adapters drive.
//! - [`run`] with a [`Context`] on Unix: systemd's notify protocol (readiness, reload, stop,
//!   extended timeouts, the watchdog) and a console (SIGINT and SIGTERM stop, SIGHUP
//!   reloads).
//! - With the `tokio` feature, the async form: `run_async` (or `run_async_with` a runtime
//!   builder of the program's own) runs an async main on a tokio runtime, through [`run`];
//!   `Context::controls_async` and `Stopping::wait_async` wait without blocking a thread.
//!   `examples/http.rs` is an axum service built on it.
//! - [`manage`]: installing the program as a service: a typed [`manage::ServiceSpec`], the
//!   pure renderers of a systemd unit, a launchd plist and the SCM settings
//!   ([`manage::render`]), and a [`manage::Manager`] that installs, updates, uninstalls,
//!   starts and stops (with a wait), pauses, continues, reloads and queries it.
//! - [`systemd`] on Unix: the notify protocol alone, for a program that only wants to tell
//!   systemd it is ready, stopping, alive, and how it is doing.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod context;
mod driver;
pub mod lifecycle;
#[cfg(feature = "log")]
pub mod log;
pub mod manage;
mod run;
#[cfg(feature = "tokio")]
mod run_async;

#[cfg_attr(unix, path = "platform/unix.rs")]
#[cfg_attr(windows, path = "platform/windows.rs")]
mod platform;

pub use context::{Context, ControlRequest, Controls, Stopping};
pub use lifecycle::{Control, StopReason};
pub use run::{run, BoxError, Failure, Mode, RunOptions, EXIT_ERROR, EXIT_PANIC};
#[cfg(feature = "tokio")]
pub use run_async::{run_async, run_async_with, AsyncControls};

/// systemd's notify protocol on its own, for a program that keeps its own runtime and signal
/// handling (steward's `steward run`): the implementation [`run`] uses.
#[cfg(unix)]
pub use platform::systemd;
