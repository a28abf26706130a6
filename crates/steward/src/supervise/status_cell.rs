//! A program's [`Status`], written by its task and read by the supervisor and by requests
//! waiting for the program to reach a state.
//!
//! tokio's `watch` channel does the same, but carries eight `Notify`s to spread many
//! receivers' wake-ups: 416 bytes a program. A program has a waiter only while a request
//! waits on it, so one `Notify` does (160 bytes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::program::Status;

struct Cell {
    /// The status, and how many times it was replaced.
    value: Mutex<(u64, Status)>,
    /// The writer is gone: the program's task ended.
    closed: AtomicBool,
    changed: Notify,
}

impl Cell {
    fn lock(&self) -> MutexGuard<'_, (u64, Status)> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The task's end: replaces the status and wakes whoever waits.
pub struct StatusSender(Arc<Cell>);

/// A reader that remembers which status it saw last, like a `watch::Receiver`.
#[derive(Clone)]
pub struct StatusWatch {
    cell: Arc<Cell>,
    seen: u64,
}

/// The program's task ended: its status will not change again.
#[derive(Debug)]
pub struct Closed;

pub fn channel(status: Status) -> (StatusSender, StatusWatch) {
    let cell = Arc::new(Cell {
        value: Mutex::new((0, status)),
        closed: AtomicBool::new(false),
        changed: Notify::new(),
    });
    (StatusSender(cell.clone()), StatusWatch { cell, seen: 0 })
}

impl StatusSender {
    pub fn send_replace(&self, status: Status) {
        {
            let mut value = self.0.lock();
            value.0 += 1;
            value.1 = status;
        }
        self.0.changed.notify_waiters();
    }
}

impl Drop for StatusSender {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.changed.notify_waiters();
    }
}

impl StatusWatch {
    /// The status now.
    pub fn get(&self) -> Status {
        self.cell.lock().1.clone()
    }

    /// The status now, which counts as seen from here on.
    pub fn get_and_update(&mut self) -> Status {
        let value = self.cell.lock();
        self.seen = value.0;
        value.1.clone()
    }

    /// Whether the status changed since it was last seen; `Err` once the task has ended.
    pub fn has_changed(&self) -> Result<bool, Closed> {
        if self.cell.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        Ok(self.cell.lock().0 != self.seen)
    }

    /// Count the status now as seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.cell.lock().0;
    }

    /// Wait for a status not seen yet, and count it as seen; `Err` once the task has ended
    /// and there is none.
    pub async fn changed(&mut self) -> Result<(), Closed> {
        loop {
            // Registered before the check, so a change between the two still wakes it.
            let notified = self.cell.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.cell.lock().0;
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if self.cell.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::fsm::State;

    fn status(state: State) -> Status {
        Status { state, pid: None, since: None, restarts: 0, last_exit: None, last_error: None }
    }

    #[tokio::test]
    async fn a_waiter_wakes_for_each_change_and_ends_with_the_writer() {
        let (tx, mut rx) = channel(status(State::Stopped));
        assert!(!rx.has_changed().unwrap());
        let waiter = tokio::spawn(async move {
            let mut seen = Vec::new();
            while rx.changed().await.is_ok() {
                seen.push(rx.get().state);
            }
            seen
        });
        tokio::task::yield_now().await;
        tx.send_replace(status(State::Starting));
        tokio::task::yield_now().await;
        tx.send_replace(status(State::Running));
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(waiter.await.unwrap(), [State::Starting, State::Running]);
    }

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_missed() {
        let (tx, mut rx) = channel(status(State::Stopped));
        rx.mark_unchanged();
        tx.send_replace(status(State::Running));
        assert!(rx.has_changed().unwrap());
        rx.changed().await.unwrap();
        assert!(!rx.has_changed().unwrap());
        assert_eq!(rx.get_and_update().state, State::Running);
        drop(tx);
        assert!(rx.has_changed().is_err());
        assert!(rx.changed().await.is_err());
    }
}
