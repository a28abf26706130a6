//! Sending alert notifications: a webhook POST and/or a command, per `[[alerts]]` rule.
//!
//! The rules are evaluated by the pure `steward_core::alerts::Evaluator` inside the
//! supervisor loop; what comes out is handed to [`Notifier::send`], which only puts it in a
//! queue and returns. Each rule has one worker task that delivers its notifications in
//! order (so "resolved" never overtakes "firing"), the webhook and the command of one
//! notification side by side. Queues are bounded: when a receiver is down for long and a
//! queue fills, further notifications of that rule are dropped and logged, and supervision
//! never waits.

mod command;
mod webhook;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use steward_core::alerts::Notification;
use steward_core::config::AlertSpec;
use tokio::sync::mpsc;

/// Notifications waiting per rule before new ones are dropped.
const QUEUE: usize = 64;

/// The JSON body of a webhook, and what the command's `STEWARD_ALERT_*` variables hold.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Payload {
    /// The rule's `name`.
    pub alert: String,
    pub program: String,
    /// "firing" or "resolved".
    pub status: &'static str,
    /// A firing alert sent again after `repeat_every`.
    pub repeat: bool,
    /// The rule's condition, as written in canonical form.
    pub condition: String,
    /// What was seen, in words.
    pub message: String,
    /// RFC 3339 with milliseconds.
    pub time: String,
}

/// The delivery workers of the current rules.
pub struct Notifier {
    workers: BTreeMap<String, mpsc::Sender<Payload>>,
}

impl Notifier {
    /// Workers for `rules`; commands run in `dir` (the config file's folder).
    pub fn new(rules: &[AlertSpec], dir: &Path) -> Self {
        let mut n = Notifier { workers: BTreeMap::new() };
        n.set_rules(rules, dir);
        n
    }

    /// Replace the rules (a reload). The old workers deliver what they have queued, then end.
    pub fn set_rules(&mut self, rules: &[AlertSpec], dir: &Path) {
        self.workers.clear();
        for rule in rules.iter().filter(|r| r.webhook.is_some() || r.command.is_some()) {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(deliver(Arc::new(rule.clone()), dir.to_path_buf(), rx));
            self.workers.insert(rule.name.clone(), tx);
        }
    }

    /// Queue `n` for delivery; never waits.
    pub fn send(&self, n: &Notification, condition: String) {
        let Some(worker) = self.workers.get(&n.alert) else { return };
        let payload = Payload {
            alert: n.alert.clone(),
            program: n.program.clone(),
            status: n.status.name(),
            repeat: n.repeat,
            condition,
            message: n.message.clone(),
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        };
        if worker.try_send(payload).is_err() {
            tracing::warn!(alert = %n.alert, program = %n.program, event = "alert-dropped",
                "alert {} for {} dropped: {QUEUE} notifications of this alert are still waiting to be delivered",
                n.alert, n.program);
        }
    }
}

/// One rule's worker: delivers each notification in turn until the queue closes.
async fn deliver(rule: Arc<AlertSpec>, dir: PathBuf, mut queue: mpsc::Receiver<Payload>) {
    while let Some(payload) = queue.recv().await {
        let hook = async {
            if let Some(url) = &rule.webhook {
                webhook::deliver(url, &payload).await;
            }
        };
        let cmd = async {
            if let Some(argv) = &rule.command {
                command::run(argv, &dir, &payload).await;
            }
        };
        tokio::join!(hook, cmd);
    }
}
