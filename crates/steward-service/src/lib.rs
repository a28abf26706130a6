//! Make a Rust program its own native service: it runs under the Windows Service Control
//! Manager, systemd or launchd, answers their protocols, and runs the same code from a
//! console.
//!
//! The crate is being built. What exists:
//! - [`lifecycle`]: the life of a service as its manager sees it (checkpoints that rise
//!   while the program works, budgets, Pause, Continue, Reload and Stop, the exit code), as a
//!   pure state machine that the platform adapters drive.

pub mod lifecycle;
