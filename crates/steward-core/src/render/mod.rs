//! What steward itself decides about its service, as pure functions of its config: how long
//! an orderly shutdown may take ([`stop_budget`]), its default name, its Windows Event Log
//! source ([`windows`]), and the generated config of a wrapped program ([`wrap`]).
//!
//! The service definitions themselves (the systemd unit, the launchd plist, the settings
//! registered with the Windows SCM) are rendered by the `steward-service` library
//! (`steward_service::manage`); the `steward` crate builds the library's spec from the config
//! (`steward::service::spec`), with the figures decided here. This crate does not depend on
//! the library, so the pure core stays free of service-manager code.

pub mod windows;
pub mod wrap;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;

/// Extra time on top of the programs' stop timeouts for steward's own shutdown (the last
/// log lines, the final sweep of each process group).
pub const STOP_MARGIN: Duration = Duration::from_secs(5);

/// The default service name.
pub const DEFAULT_NAME: &str = "steward";

/// How long an orderly shutdown of `config` can take at worst: programs stop in reverse
/// dependency order, each within its `stop_timeout`, so the worst case is the longest chain
/// of `depends_on` summed up (independent programs stop at the same time), plus
/// [`STOP_MARGIN`]. The unit's `TimeoutStopSec` (launchd: `ExitTimeOut`, Windows: the
/// preshutdown timeout) is this, so the service manager never kills programs that steward is
/// still stopping politely.
pub fn stop_budget(config: &Config) -> Duration {
    fn chain(config: &Config, name: &str, memo: &mut BTreeMap<String, Duration>) -> Duration {
        if let Some(d) = memo.get(name) {
            return *d;
        }
        let Some(p) = config.programs.get(name) else { return Duration::ZERO };
        // The graph is acyclic (the parser rejects cycles), so this recursion ends.
        let deps = p.depends_on.iter().map(|d| chain(config, d, memo)).max().unwrap_or_default();
        let total = p.stop_timeout.saturating_add(deps);
        memo.insert(name.to_owned(), total);
        total
    }
    let mut memo = BTreeMap::new();
    let longest = config.programs.keys().map(|n| chain(config, n, &mut memo)).max().unwrap_or_default();
    longest.saturating_add(STOP_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::{parse_str, EmptyEnv as NoEnv};
    use std::path::Path;

    fn config(src: &str) -> Config {
        parse_str(src, Path::new("/srv/app/steward.toml"), &NoEnv).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn stop_budget_is_the_longest_chain_plus_margin() {
        // No programs: only the margin.
        assert_eq!(stop_budget(&config("")), STOP_MARGIN);
        // web -> api -> db stop one after the other: 5 + 10 + 30; cron (60) stops alongside.
        let c = config(
            r#"
[programs.db]
command = "db"
stop_timeout = "30s"
[programs.api]
command = "api"
depends_on = ["db"]
[programs.web]
command = "web"
stop_timeout = "5s"
depends_on = ["api", "db"]
[programs.cron]
command = "cron"
stop_timeout = "40s"
"#,
        );
        assert_eq!(stop_budget(&c), Duration::from_secs(45) + STOP_MARGIN);
    }
}
