//! testkit's own tests: one test binary (one link), a module per part.

#[cfg(windows)]
mod console_drain;
#[cfg(unix)]
mod handoff;
mod harness;
mod load;
mod testchild;
