//! The rolling-restart planner: scripted rolls as tables (time in ms since the start, the
//! event, the actions it must answer with), then a property test that drives random rolls
//! through a small simulator of the runtime and checks the bounds after every step.

use std::time::{Duration, Instant};

use steward_core::rollout::Action::{self, Kill, Promote, Start, Stop};
use steward_core::rollout::Event::{
    self, NewDown, NewFailed, NewReady, NewUnready, OldDown, OldReady, OldUnready, Tick,
};
use steward_core::rollout::{OnFailure, Phase, Rev, RollError, RollSpec, Rollout, SlotStage, SlotState};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// min_ready 100 ms, ready_timeout 1 s, no progress timeout, pause on failure.
fn spec(max_surge: u32, max_unavailable: u32) -> RollSpec {
    RollSpec {
        max_surge,
        max_unavailable,
        min_ready: ms(100),
        ready_timeout: ms(1000),
        progress_timeout: None,
        on_failure: OnFailure::Pause,
    }
}

fn new(slot: u32) -> Action {
    Start { slot, rev: Rev::New }
}

fn old(slot: u32) -> Action {
    Start { slot, rev: Rev::Old }
}

fn failed(slot: u32, reason: &str) -> Event {
    NewFailed { slot, reason: reason.into() }
}

fn kill(slot: u32, reason: &str) -> Action {
    Kill { slot, reason: reason.into() }
}

/// A roll under test, with every action it took so far and when.
struct Roll {
    r: Rollout,
    t0: Instant,
    log: Vec<(u64, Action)>,
}

impl Roll {
    /// Starts a roll of `n` slots whose processes are all ready; checks the first actions.
    fn start(spec: RollSpec, n: u32, first: Vec<Action>) -> Roll {
        let slots: Vec<(u32, bool)> = (0..n).map(|i| (i, true)).collect();
        let t0 = Instant::now();
        let (r, actions) = Rollout::start(spec, &slots, t0).unwrap();
        assert_eq!(actions, first, "the first actions");
        let log = actions.into_iter().map(|a| (0, a)).collect();
        Roll { r, t0, log }
    }

    fn at(&mut self, t: u64, event: Event) -> Vec<Action> {
        let actions = self.r.handle(event, self.t0 + ms(t));
        self.log.extend(actions.iter().map(|a| (t, a.clone())));
        actions
    }

    /// Plays `script`: at each time, the event and the actions it must answer with.
    fn play(&mut self, script: Vec<(u64, Event, Vec<Action>)>) {
        for (t, event, want) in script {
            let what = format!("at {t} ms, {event:?}");
            assert_eq!(self.at(t, event), want, "{what}");
        }
    }

    fn deadline(&self) -> Option<u64> {
        self.r.next_deadline().map(|at| (at - self.t0).as_millis() as u64)
    }

    fn stages(&self) -> Vec<(Rev, SlotStage)> {
        self.r.slot_states().map(|(_, SlotState { rev, stage })| (rev, stage)).collect()
    }

    fn stops(&self) -> Vec<(u64, u32)> {
        self.log.iter().filter(|(_, a)| matches!(a, Stop { .. })).map(|(t, a)| (*t, slot_of(a))).collect()
    }
}

fn slot_of(a: &Action) -> u32 {
    match a {
        Start { slot, .. } | Stop { slot } | Kill { slot, .. } | Promote { slot } => *slot,
    }
}

#[test]
fn surge_one_over_four_slots_goes_slot_by_slot() {
    let mut roll = Roll::start(spec(1, 0), 4, vec![new(0)]);
    assert_eq!(roll.deadline(), Some(1000), "the ready timeout of slot 0");
    assert_eq!(roll.r.phase(), Phase::Progressing { replaced: 0, total: 4 });
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 }, vec![]),
        (109, Tick,                 vec![]),
        (110, Tick,                 vec![Stop { slot: 0 }]),
        (150, OldDown { slot: 0 },  vec![Promote { slot: 0 }, new(1)]),
        (160, NewReady { slot: 1 }, vec![]),
        (260, Tick,                 vec![Stop { slot: 1 }]),
        (270, OldDown { slot: 1 },  vec![Promote { slot: 1 }, new(2)]),
        (300, NewReady { slot: 2 }, vec![]),
        (400, Tick,                 vec![Stop { slot: 2 }]),
        (401, OldDown { slot: 2 },  vec![Promote { slot: 2 }, new(3)]),
        (500, NewReady { slot: 3 }, vec![]),
        (600, Tick,                 vec![Stop { slot: 3 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Progressing { replaced: 3, total: 4 });
    assert_eq!(roll.stages()[3], (Rev::Old, SlotStage::Draining));
    assert!(!roll.r.is_finished());
    roll.play(vec![(700, OldDown { slot: 3 }, vec![Promote { slot: 3 }])]);
    assert_eq!(roll.r.phase(), Phase::Complete);
    assert!(roll.r.is_finished());
    assert_eq!(roll.r.next_deadline(), None);
    assert_eq!(roll.stages(), vec![(Rev::New, SlotStage::Steady); 4]);
}

#[test]
fn surge_zero_stops_first_within_max_unavailable() {
    let mut roll = Roll::start(spec(0, 1), 3, vec![Stop { slot: 0 }]);
    assert_eq!(roll.deadline(), None, "nothing to time while the old process drains");
    assert_eq!(roll.stages()[0], (Rev::Old, SlotStage::Stopping));
    #[rustfmt::skip]
    roll.play(vec![
        (50,  OldDown { slot: 0 },  vec![new(0)]),
        (60,  NewReady { slot: 0 }, vec![]),
        (160, Tick,                 vec![Promote { slot: 0 }, Stop { slot: 1 }]),
        (200, OldDown { slot: 1 },  vec![new(1)]),
        (210, NewReady { slot: 1 }, vec![]),
        (310, Tick,                 vec![Promote { slot: 1 }, Stop { slot: 2 }]),
        (320, OldDown { slot: 2 },  vec![new(2)]),
        (330, NewReady { slot: 2 }, vec![]),
        (430, Tick,                 vec![Promote { slot: 2 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Complete);
}

#[test]
fn surge_two_runs_two_slots_at_once_and_each_finishes_on_its_own() {
    let mut roll = Roll::start(spec(2, 0), 4, vec![new(0), new(1)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 1 }, vec![]),
        (20,  NewReady { slot: 0 }, vec![]),
        (110, Tick,                 vec![Stop { slot: 1 }]),
        (115, OldDown { slot: 1 },  vec![Promote { slot: 1 }, new(2)]),
        (120, Tick,                 vec![Stop { slot: 0 }]),
        (125, OldDown { slot: 0 },  vec![Promote { slot: 0 }, new(3)]),
        (130, NewReady { slot: 3 }, vec![]),
        (140, NewReady { slot: 2 }, vec![]),
        (230, Tick,                 vec![Stop { slot: 3 }]),
        (240, Tick,                 vec![Stop { slot: 2 }]),
        (250, OldDown { slot: 2 },  vec![Promote { slot: 2 }]),
        (260, OldDown { slot: 3 },  vec![Promote { slot: 3 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Complete);
}

/// Both budgets at once, as Kubernetes spends them: one extra process and one stopped slot.
#[test]
fn surge_and_unavailable_budgets_are_both_spent() {
    let mut roll = Roll::start(spec(1, 1), 3, vec![new(0), Stop { slot: 1 }]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  OldDown { slot: 1 },  vec![new(1)]),
        (20,  NewReady { slot: 0 }, vec![]),
        (30,  NewReady { slot: 1 }, vec![]),
        (120, Tick,                 vec![Stop { slot: 0 }]),
        (125, OldDown { slot: 0 },  vec![Promote { slot: 0 }, new(2)]),
        (130, Tick,                 vec![Promote { slot: 1 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Progressing { replaced: 2, total: 3 });
}

#[test]
fn a_single_slot_with_surge_one_overlaps_old_and_new() {
    let mut roll = Roll::start(spec(1, 0), 1, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (5,   NewReady { slot: 0 }, vec![]),
        (105, Tick,                 vec![Stop { slot: 0 }]),
        (900, OldDown { slot: 0 },  vec![Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Complete);
}

#[test]
fn nothing_to_roll_is_complete_at_once() {
    let (r, actions) = Rollout::start(spec(1, 0), &[], Instant::now()).unwrap();
    assert_eq!((actions, r.phase(), r.is_finished()), (vec![], Phase::Complete, true));
}

#[test]
fn bad_settings_are_refused() {
    let now = Instant::now();
    let err = Rollout::start(spec(0, 0), &[(0, true)], now).unwrap_err();
    assert_eq!(err, RollError::NoBudget);
    assert!(err.to_string().contains("set max_surge = 1"), "{err}");
    assert_eq!(spec(0, 0).validate(), Err(RollError::NoBudget));
    assert_eq!(spec(0, 1).validate(), Ok(()));
    let err = Rollout::start(spec(1, 0), &[(3, true), (1, true), (3, false)], now).unwrap_err();
    assert_eq!(err, RollError::DuplicateSlot { slot: 3 });
}

/// The slots are rolled lowest index first whatever order they are listed in, and only the
/// slots listed (here `web:2` alone, as `steward restart web:2` would).
#[test]
fn slots_go_lowest_first_and_only_the_listed_ones() {
    let (r, actions) = Rollout::start(spec(1, 0), &[(5, true), (2, true)], Instant::now()).unwrap();
    assert_eq!(actions, vec![new(2)]);
    assert_eq!(r.slot_states().map(|(id, _)| id).collect::<Vec<_>>(), [2, 5]);
    let (mut r, _) = Rollout::start(spec(1, 0), &[(2, true)], Instant::now()).unwrap();
    assert_eq!(r.handle(NewReady { slot: 0 }, Instant::now()), vec![], "slot 0 is not in this roll");
}

#[test]
fn a_new_process_failing_at_slot_0_pauses_and_leaves_the_old_ones_alone() {
    let mut roll = Roll::start(spec(1, 0), 4, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10, NewReady { slot: 0 },          vec![]),
        (50, failed(0, "exited with code 3"), vec![kill(0, "exited with code 3")]),
    ]);
    let reason = "exited with code 3".to_owned();
    assert_eq!(roll.r.phase(), Phase::Pausing { slot: 0, reason: reason.clone() });
    assert_eq!(roll.stages()[0], (Rev::Old, SlotStage::Killing));
    assert_eq!(roll.deadline(), None, "the min_ready of a killed process is no deadline");
    roll.play(vec![(60, NewDown { slot: 0 }, vec![])]);
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 0, reason });
    assert!(roll.r.is_finished());
    assert_eq!(roll.stages()[0], (Rev::Old, SlotStage::Failed));
    // Nothing starts any more, and an old process is never stopped.
    roll.play(vec![
        (5000, Tick, vec![]),
        (5001, OldUnready { slot: 1 }, vec![]),
        (5002, OldReady { slot: 1 }, vec![]),
    ]);
    assert_eq!(roll.stops(), vec![]);
}

/// With `pause`, replacements already started finish their slot; no new slot starts.
#[test]
fn pause_lets_started_replacements_finish_and_starts_no_more() {
    let mut roll = Roll::start(spec(2, 0), 4, vec![new(0), new(1)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 },     vec![]),
        (20,  failed(1, "unhealthy"),   vec![kill(1, "unhealthy")]),
        (110, Tick,                     vec![Stop { slot: 0 }]),
        (120, NewDown { slot: 1 },      vec![]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Pausing { slot: 1, reason: "unhealthy".into() });
    roll.play(vec![(130, OldDown { slot: 0 }, vec![Promote { slot: 0 }])]);
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 1, reason: "unhealthy".into() });
    assert_eq!(
        roll.stages(),
        vec![
            (Rev::New, SlotStage::Steady),
            (Rev::Old, SlotStage::Failed),
            (Rev::Old, SlotStage::Steady),
            (Rev::Old, SlotStage::Steady)
        ]
    );
}

/// Unavailable order: the failed slot has no old process any more, so it gets its old
/// revision back (started and promoted at once: the runtime supervises it as usual).
#[test]
fn a_failure_in_the_unavailable_order_restores_the_old_revision() {
    let mut roll = Roll::start(spec(0, 1), 2, vec![Stop { slot: 0 }]);
    #[rustfmt::skip]
    roll.play(vec![
        (10, OldDown { slot: 0 },      vec![new(0)]),
        (20, failed(0, "exit code 1"), vec![kill(0, "exit code 1")]),
        (30, NewDown { slot: 0 },      vec![old(0), Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 0, reason: "exit code 1".into() });
    assert_eq!(roll.stages()[0], (Rev::Old, SlotStage::Failed));
    // Its readiness is reported like any serving process's.
    roll.play(vec![(40, OldReady { slot: 0 }, vec![])]);
}

#[test]
fn a_failure_at_slot_2_rolls_slots_0_and_1_back_through_the_same_gate() {
    let rollback = RollSpec { on_failure: OnFailure::Rollback, ..spec(1, 0) };
    let mut roll = Roll::start(rollback, 4, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,   NewReady { slot: 0 },   vec![]),
        (110,  Tick,                   vec![Stop { slot: 0 }]),
        (120,  OldDown { slot: 0 },    vec![Promote { slot: 0 }, new(1)]),
        (130,  NewReady { slot: 1 },   vec![]),
        (230,  Tick,                   vec![Stop { slot: 1 }]),
        (240,  OldDown { slot: 1 },    vec![Promote { slot: 1 }, new(2)]),
        // The surge budget is taken until the failed process is gone.
        (250,  failed(2, "exit code 1"), vec![kill(2, "exit code 1")]),
    ]);
    let reason = "exit code 1".to_owned();
    assert_eq!(roll.r.phase(), Phase::RollingBack { slot: 2, reason: reason.clone(), remaining: 3 });
    #[rustfmt::skip]
    roll.play(vec![
        (260,  NewDown { slot: 2 },    vec![old(0)]),
        // The new-revision process of slot 0 stays until its old-revision replacement proved itself.
        (270,  NewReady { slot: 0 },   vec![]),
        (320,  NewUnready { slot: 0 }, vec![]),
        (330,  NewReady { slot: 0 },   vec![]),
        (429,  Tick,                   vec![]),
        (430,  Tick,                   vec![Stop { slot: 0 }]),
        (440,  OldDown { slot: 0 },    vec![Promote { slot: 0 }, old(1)]),
        (450,  NewReady { slot: 1 },   vec![]),
        (550,  Tick,                   vec![Stop { slot: 1 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::RollingBack { slot: 2, reason: reason.clone(), remaining: 1 });
    roll.play(vec![(560, OldDown { slot: 1 }, vec![Promote { slot: 1 }])]);
    assert_eq!(roll.r.phase(), Phase::RolledBack { slot: 2, reason });
    assert!(roll.r.is_finished());
    let revs: Vec<Rev> = roll.stages().into_iter().map(|(rev, _)| rev).collect();
    assert_eq!(revs, [Rev::Old; 4]);
    // Every stop was gated (ready for min_ready first), and slot 2's process was never stopped.
    assert_eq!(roll.stops(), vec![(110, 0), (230, 1), (430, 0), (550, 1)]);
}

/// Rolling back kills unproven replacements at once (their old processes still serve) and
/// lets a proven one finish its step forward before it goes back.
#[test]
fn rollback_kills_unproven_replacements_and_lets_proven_ones_finish() {
    let rollback = RollSpec { on_failure: OnFailure::Rollback, ..spec(3, 0) };
    let mut roll = Roll::start(rollback, 3, vec![new(0), new(1), new(2)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 },  vec![]),
        (20,  NewReady { slot: 1 },  vec![]),
        (110, Tick,                  vec![Stop { slot: 0 }]),
        (115, failed(2, "exit 2"),   vec![kill(2, "exit 2"), kill(1, "rolling back: slot 2 failed")]),
        (120, NewDown { slot: 1 },   vec![]),
        (121, NewDown { slot: 2 },   vec![]),
        (130, OldDown { slot: 0 },   vec![Promote { slot: 0 }, old(0)]),
        (140, NewReady { slot: 0 },  vec![]),
        (240, Tick,                  vec![Stop { slot: 0 }]),
        (250, OldDown { slot: 0 },   vec![Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::RolledBack { slot: 2, reason: "exit 2".into() });
}

/// No rollback of the rollback: a failure of an old-revision replacement pauses.
#[test]
fn a_failure_while_rolling_back_pauses() {
    let rollback = RollSpec { on_failure: OnFailure::Rollback, ..spec(1, 0) };
    let mut roll = Roll::start(rollback, 2, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 },  vec![]),
        (110, Tick,                  vec![Stop { slot: 0 }]),
        (120, OldDown { slot: 0 },   vec![Promote { slot: 0 }, new(1)]),
        (130, failed(1, "exit 1"),   vec![kill(1, "exit 1")]),
        (140, NewDown { slot: 1 },   vec![old(0)]),
        (150, failed(0, "exit 9"),   vec![kill(0, "exit 9")]),
        (160, NewDown { slot: 0 },   vec![]),
    ]);
    let reason = "exit 9 (while rolling back after slot 1 failed: exit 1)".to_owned();
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 0, reason });
    // Slot 0 keeps its proven new-revision process.
    assert_eq!(roll.stages()[0], (Rev::New, SlotStage::Failed));
}

/// THE invariant: a timeout only ever kills the replacement. In surge order the old process
/// keeps serving; in the unavailable order it had been stopped before anything was timed.
#[test]
fn the_ready_timeout_kills_only_the_new_process() {
    let mut roll = Roll::start(spec(1, 0), 2, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (999,  Tick,                vec![]),
        (1000, Tick,                vec![kill(0, "not ready within 1s")]),
        (1010, NewDown { slot: 0 }, vec![]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 0, reason: "not ready within 1s".into() });
    assert_eq!(roll.stops(), vec![]);

    let mut roll = Roll::start(spec(0, 1), 2, vec![Stop { slot: 0 }]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,   OldDown { slot: 0 }, vec![new(0)]),
        (1010, Tick,                vec![kill(0, "not ready within 1s")]),
        (1020, NewDown { slot: 0 }, vec![old(0), Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.stops(), vec![(0, 0)]);
}

/// A readiness loss before `min_ready` starts the proof over, and gives the replacement a
/// fresh `ready_timeout` to be ready again.
#[test]
fn a_readiness_loss_restarts_min_ready() {
    let mut roll = Roll::start(spec(1, 0), 2, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 },   vec![]),
        (60,  NewUnready { slot: 0 }, vec![]),
    ]);
    assert_eq!(roll.deadline(), Some(1060), "ready_timeout again, from the loss");
    #[rustfmt::skip]
    roll.play(vec![
        (80,  NewReady { slot: 0 },   vec![]),
        (110, Tick,                   vec![]),
        (179, Tick,                   vec![]),
        (180, Tick,                   vec![Stop { slot: 0 }]),
        // After it counted, a loss no longer matters to the gate (the old one is stopping).
        (190, NewUnready { slot: 0 }, vec![]),
        (200, OldDown { slot: 0 },    vec![Promote { slot: 0 }, new(1)]),
    ]);
    // Lost for good: the fresh ready_timeout fails it.
    let mut roll = Roll::start(spec(1, 0), 1, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (900,  NewReady { slot: 0 },   vec![]),
        (950,  NewUnready { slot: 0 }, vec![]),
        (1949, Tick,                   vec![]),
        (1950, Tick,                   vec![kill(0, "not ready within 1s")]),
    ]);
}

/// An old process crashing mid-roll: the planner stops no more while that would leave more
/// than `max_unavailable` slots unavailable. A slot that is down anyway may go first.
#[test]
fn an_old_process_crashing_mid_roll_holds_back_further_stops() {
    let mut roll = Roll::start(spec(0, 1), 4, vec![Stop { slot: 0 }]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  OldUnready { slot: 2 }, vec![]),
        (20,  OldDown { slot: 0 },    vec![new(0)]),
        (30,  NewReady { slot: 0 },   vec![]),
        (40,  OldUnready { slot: 3 }, vec![]),
        // Slot 0 is done; slots 2 and 3 are down: 2 > max_unavailable, nothing is stopped.
        (130, Tick,                   vec![Promote { slot: 0 }]),
        (200, OldReady { slot: 0 },   vec![]),
        (5000, Tick,                  vec![]),
        // Slot 3 is back: stopping slot 1 would make 2 unavailable, stopping slot 2 would not.
        (6000, OldReady { slot: 3 },  vec![Stop { slot: 2 }]),
        (6010, OldDown { slot: 2 },   vec![new(2)]),
        (6020, NewReady { slot: 2 },  vec![]),
        (6120, Tick,                  vec![Promote { slot: 2 }, Stop { slot: 1 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Progressing { replaced: 2, total: 4 });
}

/// In surge order an old crash changes nothing: the old process is stopped when its
/// replacement proved itself, as always.
#[test]
fn an_old_crash_in_surge_order_waits_for_the_gate_as_usual() {
    let mut roll = Roll::start(spec(1, 0), 2, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  OldUnready { slot: 0 }, vec![]),
        (20,  NewReady { slot: 0 },   vec![]),
        (119, OldReady { slot: 0 },   vec![]),
        (120, Tick,                   vec![Stop { slot: 0 }]),
    ]);
}

#[test]
fn the_progress_timeout_fails_the_slots_in_flight() {
    let timed = RollSpec { progress_timeout: Some(ms(5000)), ready_timeout: ms(10_000), ..spec(2, 0) };
    let mut roll = Roll::start(timed, 4, vec![new(0), new(1)]);
    assert_eq!(roll.deadline(), Some(5000));
    let reason = "the roll took longer than 5s";
    #[rustfmt::skip]
    roll.play(vec![
        (10,   NewReady { slot: 0 }, vec![]),
        (4999, Tick,                 vec![Stop { slot: 0 }]),
        (5000, Tick,                 vec![kill(1, reason)]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Pausing { slot: 1, reason: reason.into() });
    roll.play(vec![
        (5010, NewDown { slot: 1 }, vec![]),
        (5020, OldDown { slot: 0 }, vec![Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 1, reason: reason.into() });
    assert_eq!(roll.stops(), vec![(4999, 0)]);
}

/// With rollback, the progress timer starts afresh for the way back.
#[test]
fn the_progress_timeout_rolls_back_with_a_fresh_timer() {
    let timed = RollSpec {
        progress_timeout: Some(ms(5000)),
        ready_timeout: ms(10_000),
        on_failure: OnFailure::Rollback,
        ..spec(1, 0)
    };
    let mut roll = Roll::start(timed, 2, vec![new(0)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,   NewReady { slot: 0 }, vec![]),
        (110,  Tick,                 vec![Stop { slot: 0 }]),
        (120,  OldDown { slot: 0 },  vec![Promote { slot: 0 }, new(1)]),
        (5000, Tick,                 vec![kill(1, "the roll took longer than 5s")]),
        (5010, NewDown { slot: 1 },  vec![old(0)]),
    ]);
    assert_eq!(roll.deadline(), Some(10_000));
    // Timed out again on the way back: pause.
    roll.play(vec![(10_000, Tick, vec![kill(0, "the roll took longer than 5s")])]);
    assert!(matches!(roll.r.phase(), Phase::Pausing { slot: 0, .. }), "{:?}", roll.r.phase());
}

/// A roll held up without anything in flight (old crashes over the budget) is blamed on
/// the first slot that waits.
#[test]
fn the_progress_timeout_blames_a_waiting_slot_when_nothing_is_in_flight() {
    let timed = RollSpec { progress_timeout: Some(ms(5000)), ..spec(0, 1) };
    let slots = [(0, false), (1, false), (2, true)];
    let (mut r, actions) = Rollout::start(timed, &slots, Instant::now()).unwrap();
    assert_eq!(actions, vec![]);
    let at = r.next_deadline().unwrap();
    assert_eq!(r.handle(Tick, at), vec![]);
    assert_eq!(r.phase(), Phase::Paused { slot: 0, reason: "the roll took longer than 5s".into() });
}

/// Late, duplicate and foreign events change nothing: no action, no new deadline.
#[test]
fn late_and_duplicate_events_are_ignored() {
    let mut roll = Roll::start(spec(1, 0), 2, vec![new(0)]);
    roll.play(vec![(10, NewReady { slot: 0 }, vec![])]);
    let deadline = roll.deadline();
    #[rustfmt::skip]
    roll.play(vec![
        (20, NewReady { slot: 0 },       vec![]), // a duplicate does not restart min_ready
        (20, NewDown { slot: 0 },        vec![]), // nothing was killed
        (20, OldDown { slot: 0 },        vec![]), // nothing was stopped
        (20, OldDown { slot: 1 },        vec![]),
        (20, NewReady { slot: 1 },       vec![]), // slot 1 has no replacement
        (20, failed(1, "stale"),         vec![]),
        (20, NewUnready { slot: 7 },     vec![]), // not in this roll
        (20, failed(7, "stale"),         vec![]),
        (20, OldReady { slot: 1 },       vec![]),
    ]);
    assert_eq!(roll.deadline(), deadline);
    #[rustfmt::skip]
    roll.play(vec![
        (110, Tick,                      vec![Stop { slot: 0 }]),
        (111, Tick,                      vec![]),
        (112, NewReady { slot: 0 },      vec![]),
        (113, OldDown { slot: 0 },       vec![Promote { slot: 0 }, new(1)]),
        (114, OldDown { slot: 0 },       vec![]), // a second report of the same exit
        (115, failed(1, "exit 1"),       vec![kill(1, "exit 1")]),
        (116, failed(1, "exit 1"),       vec![]), // killed already
        (117, NewReady { slot: 1 },      vec![]),
        (118, NewDown { slot: 1 },       vec![]),
        (119, NewDown { slot: 1 },       vec![]),
    ]);
    assert!(roll.r.is_finished());
    // After the end: still nothing.
    for e in [Tick, NewReady { slot: 1 }, OldDown { slot: 1 }, NewFailed { slot: 0, reason: "late".into() }] {
        assert_eq!(roll.at(10_000, e), vec![]);
    }
    assert_eq!(roll.r.phase(), Phase::Paused { slot: 1, reason: "exit 1".into() });
}

/// While rolling back, a new-revision process that was still finishing its step forward
/// failing turns nothing around: its slot gets the old revision back, the rollback goes on.
#[test]
fn a_new_revision_failure_while_rolling_back_does_not_pause() {
    let rollback = RollSpec { on_failure: OnFailure::Rollback, ..spec(2, 0) };
    let mut roll = Roll::start(rollback, 2, vec![new(0), new(1)]);
    #[rustfmt::skip]
    roll.play(vec![
        (10,  NewReady { slot: 0 }, vec![]),
        (110, Tick,                 vec![Stop { slot: 0 }]),
        (120, failed(1, "exit 1"),  vec![kill(1, "exit 1")]),
        (130, failed(0, "exit 2"),  vec![kill(0, "exit 2")]),
        (140, NewDown { slot: 0 },  vec![]),
        (150, OldDown { slot: 0 },  vec![old(0), Promote { slot: 0 }]),
    ]);
    assert_eq!(roll.r.phase(), Phase::RollingBack { slot: 1, reason: "exit 1".into(), remaining: 1 });
    roll.play(vec![(160, NewDown { slot: 1 }, vec![])]);
    assert_eq!(roll.r.phase(), Phase::RolledBack { slot: 1, reason: "exit 1".into() });
}

// --- The property test: random rolls through a simulated runtime ------------------------

mod sim {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use steward_core::rollout::Action::{self, Kill, Promote, Start, Stop};
    use steward_core::rollout::Event::{
        self, NewDown, NewFailed, NewReady, NewUnready, OldDown, OldReady, OldUnready, Tick,
    };
    use steward_core::rollout::{OnFailure, Phase, Rev, RollSpec, Rollout, SlotStage};

    /// A process as the simulated runtime sees it.
    #[derive(Clone, Debug)]
    struct Proc {
        rev: Rev,
        ready: bool,
        /// Ready without a break since then.
        ready_since: Option<Instant>,
        /// Was ready without a break for min_ready, seen at one of the planner's steps (a
        /// replacement counts as available from then on, while ready).
        proven: bool,
        /// Got Stop (a serving process) or Kill (a replacement); alive until reported down.
        ending: bool,
    }

    impl Proc {
        fn started(rev: Rev) -> Proc {
            Proc { rev, ready: false, ready_since: None, proven: false, ending: false }
        }
    }

    #[derive(Clone, Debug, Default)]
    struct Slot {
        serving: Option<Proc>,
        replacement: Option<Proc>,
    }

    impl Slot {
        fn available(&self) -> bool {
            let serving = self.serving.as_ref().is_some_and(|p| !p.ending && p.ready);
            let proven = self.replacement.as_ref().is_some_and(|p| !p.ending && p.ready && p.proven);
            serving || proven
        }

        fn alive(&self) -> usize {
            usize::from(self.serving.is_some()) + usize::from(self.replacement.is_some())
        }
    }

    /// The runtime: carries out the planner's actions on simulated processes, delivers
    /// their outcomes, and checks the bounds after every action.
    struct Sim {
        spec: RollSpec,
        slots: Vec<Slot>,
        planner: Rollout,
        now: Instant,
        /// A Kill was seen: the roll failed (or turned around) at least once.
        failed: bool,
    }

    /// What can happen to slot `slot`.
    #[derive(Clone, Copy, Debug)]
    enum Kind {
        NewReady,
        NewUnready,
        NewFailed,
        NewDown,
        OldDown,
        OldUnready,
        OldReady,
    }

    impl Sim {
        fn start(spec: RollSpec, ready: &[bool]) -> Sim {
            let now = Instant::now();
            let listed: Vec<(u32, bool)> = ready.iter().enumerate().map(|(i, &r)| (i as u32, r)).collect();
            let slots = ready
                .iter()
                .map(|&r| Slot {
                    serving: Some(Proc {
                        ready: r,
                        ready_since: r.then_some(now),
                        ..Proc::started(Rev::Old)
                    }),
                    replacement: None,
                })
                .collect();
            let (planner, actions) = Rollout::start(spec.clone(), &listed, now).unwrap();
            let mut sim = Sim { spec, slots, planner, now, failed: false };
            sim.carry_out(actions, None);
            sim
        }

        fn max_alive(&self) -> usize {
            self.slots.len() + self.spec.max_surge as usize
        }

        fn unavailable(&self) -> usize {
            self.slots.iter().filter(|s| !s.available()).count()
        }

        /// Whether `kind` fits slot `i` now; if so, applies it to the simulated processes.
        fn fits(&mut self, kind: Kind, i: usize) -> bool {
            let now = self.now;
            let Some(slot) = self.slots.get_mut(i) else { return false };
            match kind {
                Kind::NewDown if slot.replacement.as_ref().is_some_and(|p| p.ending) => {
                    slot.replacement = None;
                    true
                }
                Kind::OldDown if slot.serving.as_ref().is_some_and(|p| p.ending) => {
                    slot.serving = None;
                    true
                }
                Kind::NewDown | Kind::OldDown => false,
                Kind::NewReady | Kind::NewUnready | Kind::NewFailed => {
                    let Some(p) = slot.replacement.as_mut().filter(|p| !p.ending) else { return false };
                    match kind {
                        Kind::NewFailed => true,
                        _ if p.ready == matches!(kind, Kind::NewReady) => false,
                        _ => {
                            p.ready = !p.ready;
                            p.ready_since = p.ready.then_some(now);
                            true
                        }
                    }
                }
                Kind::OldUnready | Kind::OldReady => {
                    let Some(p) = slot.serving.as_mut().filter(|p| !p.ending) else { return false };
                    if p.ready == matches!(kind, Kind::OldReady) {
                        return false;
                    }
                    p.ready = !p.ready;
                    p.ready_since = p.ready.then_some(now);
                    true
                }
            }
        }

        fn event(kind: Kind, slot: u32) -> Event {
            match kind {
                Kind::NewReady => NewReady { slot },
                Kind::NewUnready => NewUnready { slot },
                Kind::NewFailed => NewFailed { slot, reason: "exit code 1".into() },
                Kind::NewDown => NewDown { slot },
                Kind::OldDown => OldDown { slot },
                Kind::OldUnready => OldUnready { slot },
                Kind::OldReady => OldReady { slot },
            }
        }

        /// Delivers `kind` for slot `i` after `gap` if it fits; else delivers it as a stale
        /// event at the same instant, which must change nothing.
        fn outcome(&mut self, kind: Kind, i: usize, gap: Duration) {
            let id = if i < self.slots.len() { i as u32 } else { 99 };
            let later = self.now + gap;
            let now = std::mem::replace(&mut self.now, later);
            if self.fits(kind, i) {
                let failed = matches!(kind, Kind::NewFailed).then_some(id);
                self.step(Self::event(kind, id), failed);
            } else {
                self.now = now;
                let (phase, deadline) = (self.planner.phase(), self.planner.next_deadline());
                let actions = self.planner.handle(Self::event(kind, id), now);
                assert_eq!(actions, vec![], "stale {kind:?} for slot {id}");
                assert_eq!((self.planner.phase(), self.planner.next_deadline()), (phase, deadline));
            }
        }

        fn tick(&mut self, at: Instant) {
            self.now = self.now.max(at);
            self.step(Tick, None);
        }

        /// Hands `event` to the planner at `self.now` and carries out its answer.
        fn step(&mut self, event: Event, failed: Option<u32>) {
            // What the planner sees at this step: replacements ready for min_ready now count.
            for p in self.slots.iter_mut().filter_map(|s| s.replacement.as_mut()) {
                if p.ready_since.is_some_and(|t| t + self.spec.min_ready <= self.now) {
                    p.proven = true;
                }
            }
            let actions = self.planner.handle(event, self.now);
            if let Some(slot) = failed {
                assert!(
                    actions.iter().any(|a| matches!(a, Kill { slot: s, .. } if *s == slot)),
                    "{actions:?}"
                );
            }
            self.carry_out(actions, Some(self.now));
        }

        fn carry_out(&mut self, actions: Vec<Action>, now: Option<Instant>) {
            let now = now.unwrap_or(self.now);
            for action in actions {
                self.carry_out_one(&action, now);
                let alive: usize = self.slots.iter().map(Slot::alive).sum();
                assert!(alive <= self.max_alive(), "{alive} processes alive after {action:?}");
            }
            if let Some(at) = self.planner.next_deadline() {
                assert!(at > now, "a deadline already due: the runtime would spin");
            }
        }

        fn carry_out_one(&mut self, action: &Action, now: Instant) {
            let (min_ready, max_unavailable) = (self.spec.min_ready, self.spec.max_unavailable as usize);
            let failed = self.failed;
            let was_unavailable = self.unavailable();
            match *action {
                Start { slot, rev } => {
                    let s = &mut self.slots[slot as usize];
                    assert!(s.replacement.is_none(), "{action:?}: slot {slot} has a replacement already");
                    if let Some(serving) = &s.serving {
                        assert_ne!(serving.rev, rev, "{action:?}: the slot runs that revision already");
                    }
                    s.replacement = Some(Proc::started(rev));
                }
                Stop { slot } => {
                    let s = &mut self.slots[slot as usize];
                    let was_available = s.available();
                    let serving = s.serving.as_mut().filter(|p| !p.ending);
                    let serving = serving.unwrap_or_else(|| panic!("{action:?}: nothing to stop"));
                    serving.ending = true;
                    let rev = serving.rev;
                    match &s.replacement {
                        // THE invariant: the surge order stops only for a replacement that
                        // has been ready for min_ready, and is now.
                        Some(p) => {
                            assert!(!p.ending && p.ready, "{action:?}: its replacement is not ready");
                            let since = p.ready_since.unwrap();
                            assert!(since + min_ready <= now, "{action:?}: ready for {:?} only", now - since);
                        }
                        // The unavailable order: within max_unavailable, and never an
                        // old-revision process once anything failed.
                        None => {
                            assert!(
                                !(failed && rev == Rev::Old),
                                "{action:?}: an old process stopped after a failure"
                            );
                            let after = was_unavailable + usize::from(was_available);
                            assert!(after <= max_unavailable, "{action:?} makes {after} slots unavailable");
                        }
                    }
                }
                Kill { slot, ref reason } => {
                    assert!(!reason.is_empty());
                    let s = &mut self.slots[slot as usize];
                    let p = s.replacement.as_mut().filter(|p| !p.ending);
                    p.unwrap_or_else(|| panic!("{action:?}: only a replacement may be killed")).ending = true;
                    self.failed = true;
                }
                Promote { slot } => {
                    let s = &mut self.slots[slot as usize];
                    assert!(s.serving.is_none(), "{action:?}: the process it replaces is not down");
                    let p = s.replacement.take().filter(|p| !p.ending);
                    s.serving = Some(p.unwrap_or_else(|| panic!("{action:?}: no live replacement")));
                }
            }
        }

        /// Everything goes well from now on: processes come up and go down when asked, and
        /// the timers fire. The roll must end.
        fn drain(&mut self) {
            for _ in 0..10_000 {
                if self.planner.is_finished() {
                    return;
                }
                let next = (0..self.slots.len()).find_map(|i| {
                    let s = &self.slots[i];
                    let (serving, repl) = (s.serving.as_ref(), s.replacement.as_ref());
                    let kind = if repl.is_some_and(|p| p.ending) {
                        Kind::NewDown
                    } else if serving.is_some_and(|p| p.ending) {
                        Kind::OldDown
                    } else if repl.is_some_and(|p| !p.ready) {
                        Kind::NewReady
                    } else if serving.is_some_and(|p| !p.ready) {
                        Kind::OldReady
                    } else {
                        return None;
                    };
                    Some((kind, i))
                });
                match (next, self.planner.next_deadline()) {
                    (Some((kind, i)), _) => self.outcome(kind, i, Duration::from_millis(1)),
                    (None, Some(at)) => self.tick(at),
                    (None, None) => {
                        panic!("stuck in {:?}: nothing to deliver, no deadline", self.planner.phase())
                    }
                }
            }
            panic!("no end after 10 000 steps: {:?}", self.planner.phase());
        }

        /// The end agrees with the processes: one per slot, of the revision the phase says.
        fn check_end(&self) {
            for (i, s) in self.slots.iter().enumerate() {
                assert!(s.replacement.is_none(), "slot {i} still has a replacement");
                assert!(s.serving.as_ref().is_some_and(|p| !p.ending), "slot {i} has no process");
            }
            let revs: Vec<Rev> = self.slots.iter().map(|s| s.serving.as_ref().unwrap().rev).collect();
            let states: Vec<_> = self.planner.slot_states().collect();
            for ((_, state), rev) in states.iter().zip(&revs) {
                assert_eq!(state.rev, *rev);
                assert!(matches!(state.stage, SlotStage::Steady | SlotStage::Failed), "{states:?}");
            }
            match self.planner.phase() {
                Phase::Complete => assert!(revs.iter().all(|&r| r == Rev::New)),
                Phase::RolledBack { .. } => assert!(revs.iter().all(|&r| r == Rev::Old)),
                Phase::Paused { .. } => assert!(!revs.iter().all(|&r| r == Rev::New), "paused yet complete"),
                other => panic!("finished in {other:?}"),
            }
        }
    }

    fn spec() -> impl Strategy<Value = RollSpec> {
        let ms = Duration::from_millis;
        (0u32..3, 0u32..3, 0usize..3, 0usize..3, 0usize..3, any::<bool>()).prop_filter_map(
            "both budgets 0",
            move |(max_surge, max_unavailable, m, r, p, rollback)| {
                (max_surge + max_unavailable > 0).then(|| RollSpec {
                    max_surge,
                    max_unavailable,
                    min_ready: [ms(0), ms(50), ms(200)][m],
                    ready_timeout: [ms(300), ms(2000), ms(10_000)][r],
                    progress_timeout: [None, Some(ms(2000)), Some(ms(30_000))][p],
                    on_failure: if rollback { OnFailure::Rollback } else { OnFailure::Pause },
                })
            },
        )
    }

    /// What the runtime reports, for which slot (one past the last: a slot not in the roll),
    /// and how long after the previous report.
    fn ops() -> impl Strategy<Value = Vec<(u8, usize, u64)>> {
        prop::collection::vec((0u8..24, 0usize..6, 0u64..300), 0..80)
    }

    fn play(spec: RollSpec, ready: &[bool], crashes: bool, ops: &[(u8, usize, u64)]) {
        let mut sim = Sim::start(spec, ready);
        for &(op, slot, gap) in ops {
            let i = slot % (ready.len() + 1);
            let gap = Duration::from_millis(gap);
            let kind = match op {
                0..=5 => Kind::NewReady,
                6 => Kind::NewUnready,
                7 if crashes => Kind::NewFailed,
                7 => Kind::NewReady,
                8..=10 => Kind::NewDown,
                11..=13 => Kind::OldDown,
                14 => Kind::OldUnready,
                15 | 16 => Kind::OldReady,
                17..=21 => {
                    sim.tick(sim.now + gap);
                    continue;
                }
                _ => {
                    let at = sim.planner.next_deadline().unwrap_or(sim.now);
                    sim.tick(at);
                    continue;
                }
            };
            sim.outcome(kind, i, gap);
        }
        sim.drain();
        sim.check_end();
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn random_rolls_keep_the_bounds_and_end(
            spec in spec(),
            ready in prop::collection::vec(any::<bool>(), 1..6),
            crashes in any::<bool>(),
            ops in ops(),
        ) {
            play(spec, &ready, crashes, &ops);
        }
    }
}
