//! `check_every = "1h"`: look at the release source when steward starts and then that often,
//! and deploy what is new, through
//! the same checks and gate as `steward deploy --latest`. A version that failed its gate is
//! quarantined and never tried again by itself.
//!
//! One task for all such programs, made only when one has `check_every` at startup (so a
//! steward without it has no timer); it reads each program's `check_every` again before each
//! check, so a reload that changes or removes it is followed.

use std::collections::BTreeMap;
use tokio::time::Instant;

use super::{DeployError, Deployer, Request, Wanted};

/// Starts the checks when a program of `config` has `check_every`.
pub fn spawn_checks(
    config: &steward_core::config::Config,
    deployer: Deployer,
) -> Option<tokio::task::JoinHandle<()>> {
    let checked: Vec<String> = config
        .releases
        .iter()
        .filter(|(_, r)| r.check_every.is_some())
        .map(|(name, _)| name.clone())
        .collect();
    if checked.is_empty() {
        return None;
    }
    Some(tokio::spawn(run(checked, deployer)))
}

async fn run(checked: Vec<String>, deployer: Deployer) {
    // The first look is at once: a steward that was down for a while catches up.
    let start = Instant::now();
    let mut due: BTreeMap<String, Instant> = checked.into_iter().map(|n| (n, start)).collect();
    while let Some((program, at)) = due.iter().min_by_key(|(_, at)| **at).map(|(p, at)| (p.clone(), *at)) {
        tokio::time::sleep_until(at).await;
        // The program's `check_every` now: a reload may have changed or removed it.
        let interval = match deployer.control.release_info(program.clone()).await {
            Ok(info) => info.spec.check_every,
            Err(_) => None,
        };
        let Some(interval) = interval else {
            due.remove(&program);
            continue;
        };
        due.insert(program.clone(), Instant::now() + interval);
        let request = Request { program: program.clone(), wanted: Wanted::Latest, allow_downgrade: false };
        let Ok(busy) = deployer.claim(&program) else { continue };
        let result = deployer.deploy_now(request, true).await;
        drop(busy);
        match result {
            Ok(outcome) => tracing::info!(program = %program, event = "auto-deploy", "{}", outcome.message),
            Err(DeployError::NoNews(why)) => {
                tracing::info!(program = %program, event = "auto-deploy", "nothing new: {why}")
            }
            Err(e) => {
                tracing::warn!(program = %program, event = "auto-deploy", "checking for a new release failed: {e}")
            }
        }
    }
}
