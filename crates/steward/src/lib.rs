//! steward: run any program as a supervised background service.
//!
//! The binary (`main.rs`) is a thin shell over this library: [`cli`] parses the command
//! line, [`supervise`] runs the programs of a config, [`process`] starts and stops process
//! trees per platform, and [`logs`] captures their output.

pub mod alerts;
pub mod api;
pub mod cli;
pub mod daemon;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod process;
pub mod resources;
pub mod service;
pub mod signals;
pub mod supervise;
