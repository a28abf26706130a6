//! testkit's own tests: one test binary (one link), a module per part.

#[cfg(unix)]
mod handoff;
#[cfg(windows)]
mod handoff_windows;
mod harness;
mod load;
mod receiver;
mod release;
// rsyslogd is a Unix daemon.
#[cfg(unix)]
mod rsyslog;
mod testchild;
