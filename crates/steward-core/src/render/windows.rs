//! What only steward's own Windows service has, beyond what `steward-service` registers.

/// The Event Log source every steward service writes to (Application log). Install registers
/// it; the service host writes as it.
pub const EVENT_SOURCE: &str = "steward";
