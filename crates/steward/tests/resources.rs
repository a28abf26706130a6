//! Resource sampling of real process trees. What sampling 500 programs costs is measured by
//! `benches/resource_sampling.rs`.

use std::process::Stdio;

use steward::process::{self, Spawned};
use steward::resources;
use testkit::{testchild, wait_until, DEADLINE};

/// A testchild with `args`, in a tree of its own as programs are.
fn spawn(args: &[&str]) -> Spawned {
    let mut cmd = tokio::process::Command::new(testchild());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    process::spawn_command(cmd).expect("spawn the test child")
}

/// Kills on drop: a failed test leaves nothing running.
struct Trees(Vec<Spawned>);

impl Drop for Trees {
    fn drop(&mut self) {
        for s in &self.0 {
            let _ = s.tree.kill();
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_tree_is_counted_whole_and_a_gone_one_is_none() {
    let dir = testkit::tempfile::tempdir().unwrap();
    let gc = dir.path().join("gc.pid");
    let gc = gc.to_str().unwrap();
    let trees = Trees(vec![spawn(&[
        "--spawn-grandchild",
        "--grandchild-pidfile",
        gc,
        "--alloc-mb",
        "16",
        "--print-ready",
        "--sleep",
        "1h",
    ])]);
    let tree = trees.0[0].tree.reference();
    // Wait until the child has allocated (its rss is then above 16 MiB) and the grandchild runs.
    let usage = wait_until(DEADLINE, "the tree to hold 2 processes and 16 MiB", || {
        resources::sample(std::slice::from_ref(&tree))[0]
            .filter(|u| u.processes == 2 && u.rss_bytes > 16 << 20)
    });
    assert!(usage.cpu_seconds >= 0.0);
    let _ = trees.0[0].tree.kill();
    wait_until(DEADLINE, "the tree to be gone", || {
        resources::sample(std::slice::from_ref(&tree))[0].is_none().then_some(())
    });
}
