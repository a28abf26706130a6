//! The deploy gate: ready in time, then up for `healthy_for`; the first failure decides.

use std::time::{Duration, Instant};

use steward_core::fsm::State;
use steward_core::gate::{Gate, Seen, Verdict};

const READY: Duration = Duration::from_secs(60);
const HOLD: Duration = Duration::from_secs(10);

fn seen(state: State, ready: bool) -> Seen {
    Seen { state, ready }
}

fn running() -> Seen {
    seen(State::Running, true)
}

fn failed(g: &Gate) -> String {
    match g.verdict() {
        Some(Verdict::Failed(why)) => why.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn ready_then_held_passes() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    assert_eq!(g.deadline(), Some(t + READY));
    g.observe([("api", seen(State::Starting, false))], t);
    g.observe([("api", running())], t + Duration::from_secs(2));
    assert_eq!(g.deadline(), Some(t + Duration::from_secs(12)));
    g.tick(t + Duration::from_secs(11));
    assert_eq!(g.verdict(), None);
    g.tick(t + Duration::from_secs(12));
    assert_eq!(g.verdict(), Some(&Verdict::Passed));
    assert_eq!(g.deadline(), None);
}

#[test]
fn nothing_counts_while_switching() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    // The old process stopping, before the switch: not a failure.
    g.observe([("api", seen(State::Stopping, false))], t);
    g.observe([("api", seen(State::Exited, false))], t);
    assert_eq!(g.verdict(), None);
    assert_eq!(g.deadline(), None);
}

#[test]
fn every_process_must_be_ready() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("web:0", running()), ("web:1", seen(State::Running, false))], t);
    assert_eq!(g.deadline(), Some(t + READY), "a running process whose check has not passed is not ready");
    g.observe([("web:0", running()), ("web:1", running())], t + Duration::from_secs(1));
    assert_eq!(g.deadline(), Some(t + Duration::from_secs(11)));
}

#[test]
fn a_crash_before_ready_fails() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", seen(State::Starting, false))], t);
    g.observe([("api", seen(State::Backoff, false))], t);
    assert!(failed(&g).contains("api went down (backoff) before it was ready"), "{}", failed(&g));
}

#[test]
fn a_crash_while_held_fails_and_says_when() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", running())], t);
    g.observe([("api", seen(State::Backoff, false))], t + Duration::from_secs(3));
    let why = failed(&g);
    assert!(why.contains("after it was ready") && why.contains("3.0s") && why.contains("10.0s"), "{why}");
}

#[test]
fn not_ready_in_time_fails() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", seen(State::Running, false))], t);
    g.tick(t + READY - Duration::from_millis(1));
    assert_eq!(g.verdict(), None);
    g.tick(t + READY);
    assert!(failed(&g).contains("within 60.0s"));
}

#[test]
fn losing_readiness_while_held_fails() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", running())], t);
    g.observe([("api", seen(State::Running, false))], t + Duration::from_secs(1));
    assert!(failed(&g).contains("stopped being ready"));
}

#[test]
fn a_stop_after_start_fails_but_not_yet_started_waits() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", seen(State::Stopped, false))], t);
    assert_eq!(g.verdict(), None, "not started yet");
    g.observe([("api", seen(State::Starting, false))], t);
    g.observe([("api", seen(State::Stopping, false))], t);
    assert!(failed(&g).contains("was stopped"));
}

#[test]
fn a_roll_then_a_hold() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.rolled(Ok(()), t);
    assert_eq!(g.deadline(), Some(t + HOLD));
    g.observe([("web:0", running()), ("web:1", running())], t + Duration::from_secs(1));
    g.tick(t + HOLD);
    assert_eq!(g.verdict(), Some(&Verdict::Passed));

    let mut g = Gate::new(READY, HOLD);
    g.rolled(Err("web:1: exited with 3".into()), t);
    assert!(failed(&g).contains("rolling restart failed: web:1: exited with 3"));
}

#[test]
fn the_first_failure_stays() {
    let t = Instant::now();
    let mut g = Gate::new(READY, HOLD);
    g.switched(t);
    g.observe([("api", seen(State::Fatal, false))], t);
    let first = failed(&g);
    g.observe([("api", running())], t);
    g.tick(t + READY + HOLD);
    assert_eq!(failed(&g), first);
}
