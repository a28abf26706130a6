//! The alert `when` grammar, and the evaluator that runs a parsed rule.
//!
//! The input is the `when` text, a NUL byte, then bytes that script observations and ticks
//! for two programs.
//!
//! What must hold: a text parses or gets an error whose span lies inside it, on character
//! boundaries; what a condition shows (in messages) parses back to the same condition (a
//! size to within its rounding); the evaluator never fires an alert twice without
//! resolving it in between, and its deadlines never lie in the past of the time they were
//! asked at unless a tick is due.

use std::time::{Duration, Instant};

use steward_core::alerts::{parse_condition, AlertStatus, Condition, Evaluator, Observation};
use steward_core::config::AlertSpec;
use steward_core::fsm::State;
use steward_core::health::Health;

use crate::Bytes;

pub fn check(data: &[u8]) {
    let (text, script) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let condition = match parse_condition(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{e:?} in {text:?}");
            assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end), "{e:?}");
            assert!(!e.message.is_empty() && !e.hint.is_empty(), "{e:?}");
            return;
        }
    };
    let shown = condition.to_string();
    let back =
        parse_condition(&shown).unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse: {e:?}"));
    match (&condition, &back) {
        (Condition::MemoryAbove(a), Condition::MemoryAbove(b)) => {
            // Shown to one decimal of its unit: within 5% (and at least 1 byte) of the value.
            let off = a.abs_diff(*b);
            assert!(off <= (*a / 20).max(1), "{shown:?} is {b}, not about {a}");
        }
        _ => assert_eq!(back, condition, "{shown:?} does not parse back"),
    }
    evaluate(condition, script);
}

/// Runs the condition as a rule over a script of observations.
fn evaluate(condition: Condition, script: &[u8]) {
    let mut bytes = Bytes::new(script);
    let repeat_every = match bytes.u8() % 3 {
        0 => None,
        1 => Some(Duration::from_secs(u64::from(bytes.u16()))),
        _ => Some(Duration::from_nanos(bytes.u64())),
    };
    let rule = AlertSpec {
        name: "rule".into(),
        when: condition,
        webhook: None,
        command: None,
        repeat_every,
        programs: if bytes.bool() { vec!["web".into()] } else { Vec::new() },
    };
    let mut evaluator = Evaluator::new(vec![rule]);
    let start = Instant::now();
    let mut now = start;
    let mut firing = std::collections::BTreeSet::new();
    // Bounded, so that an input is a few hundred steps at most.
    for _ in 0..512 {
        if bytes.is_empty() {
            break;
        }
        let op = bytes.u8();
        // Time only moves forward, by up to about 18 hours a step.
        now = now.checked_add(Duration::from_millis(u64::from(bytes.u16()) << (op >> 5))).unwrap_or(now);
        let program = if op & 1 == 0 { "web" } else { "api" };
        let notes = match (op >> 1) % 8 {
            0 => evaluator.tick(now),
            1 => evaluator.observe(program, Observation::Restarted, now),
            2 => {
                let state = State::ALL[usize::from(bytes.u8()) % State::ALL.len()];
                evaluator.observe(program, Observation::State(state), now)
            }
            3 => evaluator.observe(program, Observation::Health(Health::Unhealthy), now),
            4 => evaluator.observe(program, Observation::Health(Health::Healthy), now),
            5 => {
                let rss = bytes.bool().then(|| bytes.u64());
                evaluator.observe(program, Observation::Memory(rss), now)
            }
            6 => evaluator.forget(program),
            _ => {
                let rules = evaluator.rules().to_vec();
                evaluator.set_rules(rules, now)
            }
        };
        for n in &notes {
            let key = (n.alert.clone(), n.program.clone());
            match (n.status, n.repeat) {
                (AlertStatus::Firing, false) => assert!(firing.insert(key), "fired twice: {n:?}"),
                (AlertStatus::Firing, true) => assert!(firing.contains(&key), "repeat of nothing: {n:?}"),
                (AlertStatus::Resolved, _) => assert!(firing.remove(&key), "resolved nothing: {n:?}"),
            }
        }
        let now_firing: std::collections::BTreeSet<(String, String)> =
            evaluator.firing().map(|(a, p)| (a.to_owned(), p.to_owned())).collect();
        assert_eq!(now_firing, firing, "notifications and firing() disagree");
        if let Some(deadline) = evaluator.next_deadline(now) {
            // Overdue is allowed (a tick is due); it still must not be before the start.
            assert!(deadline >= start, "a deadline before anything happened");
        }
    }
}
