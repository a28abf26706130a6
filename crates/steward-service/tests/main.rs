//! The library run for real: the example service spawned as a process, signalled (or sent
//! Ctrl+C), and listened to on a real notify socket; and the manage side's renderers read
//! back by real parsers (`render`).

#[cfg(unix)]
mod console;
mod harness;
// The crate's dev-dependency on itself turns the feature on for every `cargo test`.
#[cfg(all(unix, feature = "tokio"))]
mod http;
mod manage;
mod render;
#[cfg(unix)]
mod systemd_notify;
#[cfg(windows)]
mod windows_console;
