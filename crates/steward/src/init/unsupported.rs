//! No PID namespaces here: steward is never a container's init.

pub fn run_init() {}
