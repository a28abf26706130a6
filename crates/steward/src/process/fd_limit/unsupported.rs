//! Where there is no `RLIMIT_NOFILE` (Windows: handles are limited per process by memory, not
//! by a number to raise), there is nothing to do.

use std::io;

/// A raise that happened: the soft limit before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Nothing to raise here.
pub fn raise() -> io::Result<Option<Raised>> {
    Ok(None)
}
