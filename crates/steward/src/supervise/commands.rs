//! The command queue from the supervisor to one program task: a queue behind a mutex and a
//! `Notify`. tokio's mpsc channel, used before, allocates a block of 32 slots and
//! cache-padded counters up front, about 1.5 KB per program whether or not anything is ever
//! sent (docs/benchmarks.md); this holds ~100 bytes until a command is queued.
//!
//! One sender (the program's handle), one receiver (its task). Dropping the sender closes
//! the queue; the receiver still gets what was queued before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use steward_core::fsm::Event;

struct Shared {
    queue: Mutex<VecDeque<Event>>,
    closed: AtomicBool,
    wake: Notify,
}

pub(super) struct Sender(Arc<Shared>);
pub(super) struct Receiver(Arc<Shared>);

pub(super) fn queue() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        closed: AtomicBool::new(false),
        wake: Notify::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sender {
    pub(super) fn send(&self, event: Event) {
        self.0.queue().push_back(event);
        self.0.wake.notify_one();
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

impl Receiver {
    /// The next command, or `None` once the sender is gone and the queue is empty.
    /// Cancel-safe: the queue is looked at before every wait, so a wake-up lost with a
    /// dropped future loses no command.
    pub(super) async fn recv(&mut self) -> Option<Event> {
        loop {
            {
                let mut queue = self.0.queue();
                if let Some(event) = queue.pop_front() {
                    // Commands are rare: an empty queue gives its buffer back rather than
                    // keep 128 bytes a program for the next one.
                    if queue.is_empty() {
                        *queue = VecDeque::new();
                    }
                    return Some(event);
                }
            }
            if self.0.closed.load(Ordering::Acquire) {
                return None;
            }
            // notify_one keeps a permit when nobody waits, so a send between the look above
            // and this wait still wakes it.
            self.0.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_arrive_in_order_then_the_close() {
        let (tx, mut rx) = queue();
        tx.send(Event::Start);
        tx.send(Event::Stop);
        let waiter = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(event) = rx.recv().await {
                got.push(event);
            }
            got
        });
        tokio::task::yield_now().await;
        tx.send(Event::Restart);
        drop(tx);
        assert_eq!(waiter.await.unwrap(), vec![Event::Start, Event::Stop, Event::Restart]);
    }

    #[tokio::test]
    async fn a_dropped_wait_loses_nothing() {
        let (tx, mut rx) = queue();
        // A wait that is dropped after the send woke it, as in a select! whose other
        // branch won.
        let mut wait = Box::pin(rx.recv());
        assert!(futures_util::FutureExt::now_or_never(&mut wait).is_none());
        tx.send(Event::Start);
        drop(wait);
        assert_eq!(rx.recv().await, Some(Event::Start));
    }
}
