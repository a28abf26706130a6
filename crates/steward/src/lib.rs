//! steward: run any program as a supervised background service.
//!
//! The binary (`main.rs`) is a thin shell over this library: [`cli`] parses the command
//! line, [`supervise`] runs the programs of a config, [`process`] starts and stops process
//! trees per platform, and [`logs`] captures their output.

pub mod api;
pub mod cli;
pub mod daemon;
pub mod logs;
pub mod process;
pub mod service;
pub mod signals;
pub mod supervise;
