//! OSes where steward does not sample process trees (macOS, the BSDs): nothing is sampled,
//! and the config refuses `max_memory` and memory alerts there.

use super::Usage;
use crate::process::TreeRef;

pub const SUPPORTED: bool = false;

pub fn sample(trees: &[TreeRef]) -> Vec<Option<Usage>> {
    vec![None; trees.len()]
}

pub fn own() -> Option<Usage> {
    None
}
