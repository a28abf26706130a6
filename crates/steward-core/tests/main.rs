//! steward-core's integration tests: one test binary (one link), a module per area.
#![allow(dead_code)] // each module uses its own part of `support`

mod support;

mod config_api;
mod config_dashboard;
mod config_errors;
mod config_health_alerts;
mod config_instances;
mod config_ok;
mod config_release;
mod config_ship;
mod extremes;
mod gate;
mod release;
mod render;
mod rollout;
