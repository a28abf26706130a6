//! The library run for real: the example service spawned as a process, signalled, and
//! listened to on a real notify socket.

#[cfg(unix)]
mod console;
#[cfg(unix)]
mod harness;
#[cfg(unix)]
mod systemd_notify;
