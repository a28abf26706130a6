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
//! - [`systemd`] on Unix: the notify protocol alone, for a program that only wants to tell
//!   systemd it is ready, stopping, alive, and how it is doing.

mod context;
mod driver;
pub mod lifecycle;
mod run;

#[cfg_attr(unix, path = "platform/unix.rs")]
#[cfg_attr(windows, path = "platform/windows.rs")]
mod platform;

pub use context::{Context, ControlRequest, Controls, Stopping};
pub use lifecycle::{Control, StopReason};
pub use run::{run, BoxError, Failure, Mode, RunOptions, EXIT_ERROR, EXIT_PANIC};

/// systemd's notify protocol on its own, for a program that keeps its own runtime and signal
/// handling (steward's `steward run`): the implementation [`run`] uses.
#[cfg(unix)]
pub use platform::systemd;
