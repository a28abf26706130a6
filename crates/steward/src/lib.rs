//! steward: run any program as a supervised background service.
//!
//! The binary (`main.rs`) is a thin shell over this library. Its modules, bottom up (each
//! uses only modules below it; `layers.rs` has the floors and the test that keeps them):
//!
//! - [`private`]: owner-only folders and files (state, logs).
//! - [`init`]: steward as a container's PID 1: the init that reaps orphans and forwards
//!   signals, forked before anything else runs; [`loader`]: the pages the dynamic loader
//!   leaves mapped, released first thing in `main`.
//! - [`protocol`]: the JSON of the API, shared by the daemon and the CLI; [`signals`]: the
//!   signals that stop `steward run`; [`logs`]: pipes to whole lines to rotating files;
//!   [`sockets`]: listening sockets passed to programs; [`releases`]: fetching, verifying and
//!   unpacking release archives, and the installed versions on disk; [`tls`]: what steward's
//!   TLS clients share (a CA file's certificates, the client config).
//! - [`process`]: starting and stopping process trees, per platform.
//! - [`resources`]: memory and CPU of process trees; [`health`]: health probes.
//! - [`alerts`]: delivering alert notifications (webhook, command).
//! - [`supervise`]: the supervisor: one task per program around the pure state machine, the
//!   dependency scheduler, the control handle, typed events and snapshots.
//! - [`metrics`]: a snapshot as Prometheus metrics; [`deploy`]: deploying a program's new
//!   release through the supervisor, gated, rolled back on failure; [`ship`]: the log files
//!   sent to central stores (`[[ship]]`).
//! - [`api`]: the HTTP API (local socket, remote listener, `/metrics`); [`service`]:
//!   installing steward as a native service, and the status sink for the service manager.
//! - [`update`]: `steward self-update`: the release of steward itself, the swap of its binary,
//!   the restart through the service manager, and the boot counter that confirms or rolls back.
//! - [`daemon`]: a running steward composed: lock, API, supervisor, reload triggers.
//! - [`host`]: steward run by the Windows Service Control Manager; [`cli`]: the verbs.

pub mod alerts;
pub mod api;
pub mod cli;
pub mod daemon;
pub mod deploy;
pub mod health;
pub mod host;
pub mod init;
#[cfg(test)]
mod layers;
pub mod loader;
pub mod logs;
pub mod metrics;
pub mod private;
pub mod process;
pub mod protocol;
pub mod releases;
pub mod resources;
pub mod service;
pub mod ship;
pub mod signals;
pub mod sockets;
pub mod supervise;
pub mod tls;
pub mod update;
