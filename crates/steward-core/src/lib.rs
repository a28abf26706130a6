//! The OS-independent core of steward.
//!
//! Nothing in this crate spawns a process, sleeps, reads the clock or knows about tokio.
//! Time comes in as an argument (`now: Instant`), and decisions go out as values
//! (for example [`fsm::Action`]s) that the runtime in the `steward` crate carries out.
//! The one exception is [`config::load`], which reads the config file and its env files
//! before handing the text to the pure parser.

// Pure code has no reason for `unsafe`.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod config;
pub mod deps;
pub mod framing;
pub mod fsm;
pub mod gate;
pub mod health;
pub mod limits;
pub mod release;
pub mod reload;
pub mod render;
pub mod rollout;
pub mod rotation;
pub mod schedule;
pub mod ship;
pub mod sweep;
pub mod throttle;
pub mod units;
