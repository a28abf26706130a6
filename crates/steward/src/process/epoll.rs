//! When a child's pidfd or output pipe turns ready (Linux): one epoll set per runtime for
//! all of them, instead of a registration with the runtime each.
//!
//! tokio's I/O driver keeps 256 bytes for each descriptor it watches (its `ScheduledIo` is
//! padded to two cache lines), and a child has three: its pidfd and two pipes, 768 bytes
//! of each program's cost when 5,000 run (docs/benchmarks.md section 15). Here they go into
//! one epoll set, which the runtime watches as one descriptor and one task drains; each of
//! them costs a slot of 24 bytes: whether it turned ready since it was last found empty, and
//! the waker of the task waiting for it. The wake-up stays on the runtime's thread: the set
//! turns readable in the runtime's own `epoll_wait`, and the draining task wakes the waiters
//! in the same turn.
//!
//! Edge-triggered, as tokio is: a reader reads until `WouldBlock`, then clears its slot with
//! the tick it saw, so that an event that came in between is not lost.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Registry, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, ReadBuf};

/// A watched descriptor's state.
struct Slot {
    /// It turned ready since a reader last found it empty.
    ready: bool,
    /// Counts its events, so that a reader clears only what it saw.
    tick: u32,
    waker: Option<Waker>,
}

/// One runtime's set.
struct Set {
    registry: Registry,
    slots: Mutex<Slab<Slot>>,
}

/// How many events one drain takes at a time.
const EVENTS: usize = 256;

impl Set {
    fn slots(&self) -> MutexGuard<'_, Slab<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current runtime's set, made (and its draining task started) at the first use.
    fn current() -> io::Result<Arc<Set>> {
        static SETS: Mutex<Vec<(tokio::runtime::Id, Weak<Set>)>> = Mutex::new(Vec::new());
        let handle = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let id = handle.id();
        let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
        // A set lives as long as its runtime's task (or a descriptor still in it).
        sets.retain(|(_, set)| set.strong_count() > 0);
        if let Some(set) = sets.iter().find(|(i, _)| *i == id).and_then(|(_, set)| set.upgrade()) {
            return Ok(set);
        }
        let poll = mio::Poll::new()?;
        let set = Arc::new(Set { registry: poll.registry().try_clone()?, slots: Mutex::new(Slab::new()) });
        // SAFETY: the Poll owns its epoll descriptor, open and the same until it is dropped,
        // and `drain` only polls it (never swaps it through `get_inner_mut`).
        let poll = unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        handle.spawn(drain(poll, set.clone()));
        sets.push((id, Arc::downgrade(&set)));
        Ok(set)
    }
}

/// The set's task: marks the slots of the descriptors that turned ready and wakes their
/// waiters, each time the set turns readable.
async fn drain(mut poll: AsyncFd<mio::Poll>, set: Arc<Set>) {
    let mut events = Events::with_capacity(EVENTS);
    loop {
        let mut guard = match poll.readable_mut().await {
            Ok(guard) => guard,
            Err(e) => return lost(&e),
        };
        loop {
            match guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return lost(&e),
            }
            let mut slots = set.slots();
            for event in &events {
                if let Some(slot) = slots.get_mut(event.token().0) {
                    slot.ready = true;
                    slot.tick = slot.tick.wrapping_add(1);
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                }
            }
            // Fewer than asked for: the set is empty now. An event after this poll makes
            // the set readable again, and the runtime sees that after the clear below.
            if events.iter().count() < EVENTS {
                break;
            }
        }
        guard.clear_ready();
    }
}

/// epoll_wait cannot fail on a valid set with a valid buffer; should it, say so loudly, as
/// the children's exits and output are no longer seen.
fn lost(e: &io::Error) {
    tracing::error!(
        event = "watch-failed",
        "the set that watches the children's exits and output failed ({e}); restart steward"
    );
}

/// A descriptor in the current runtime's set, readable-interest, edge-triggered.
pub(super) struct Watched {
    fd: OwnedFd,
    key: usize,
    set: Arc<Set>,
}

impl Watched {
    /// Adds `fd` to the current runtime's set. Not ready until an event says so (one that is
    /// ready already is reported at the set's next drain).
    pub(super) fn new(fd: OwnedFd) -> io::Result<Watched> {
        let set = Set::current()?;
        let key = set.slots().insert(Slot { ready: false, tick: 0, waker: None });
        if let Err(e) = set.registry.register(&mut SourceFd(&fd.as_raw_fd()), Token(key), Interest::READABLE)
        {
            set.slots().remove(key);
            return Err(e);
        }
        Ok(Watched { fd, key, set })
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Ready once the descriptor may be, with the tick to hand to [`Watched::clear_ready`]
    /// when an operation then finds it is not.
    pub(super) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<u32> {
        let mut slots = self.set.slots();
        let slot = &mut slots[self.key];
        if slot.ready {
            return Poll::Ready(slot.tick);
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(super) async fn ready(&self) -> u32 {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await
    }

    /// Not ready until the next event, unless one came after `tick`.
    pub(super) fn clear_ready(&self, tick: u32) {
        let mut slots = self.set.slots();
        let slot = &mut slots[self.key];
        if slot.tick == tick {
            slot.ready = false;
        }
    }
}

impl Drop for Watched {
    /// The descriptor closes right after this, and its last close takes it out of the set:
    /// no `EPOLL_CTL_DEL` (three system calls a process, 8% of steward's thread when 5,000
    /// programs stopped). A copy in a child that is being cloned and has not exec'd yet keeps
    /// it in the set until that exec; an event it reports meanwhile finds its slot gone, or
    /// taken by a new descriptor, whose reader then reads once for nothing and waits again.
    fn drop(&mut self) {
        self.set.slots().remove(self.key);
    }
}

/// Our end of a child's output pipe, non-blocking, read as its set says it is ready.
pub(super) struct PipeReader(pub(super) Watched);

impl AsyncRead for PipeReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let tick = ready!(self.0.poll_ready(cx));
            let unfilled = buf.initialize_unfilled();
            // SAFETY: reads at most `unfilled.len()` bytes into memory `unfilled` owns.
            let n = unsafe { libc::read(self.0.fd(), unfilled.as_mut_ptr().cast(), unfilled.len()) };
            if n >= 0 {
                buf.advance(n as usize);
                return Poll::Ready(Ok(()));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => self.0.clear_ready(tick),
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::FromRawFd;

    use tokio::io::AsyncReadExt;

    use super::*;

    fn pipe() -> (PipeReader, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array it is given.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }, 0);
        // SAFETY: both are open and owned by nothing else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) };
        (PipeReader(Watched::new(r).unwrap()), w)
    }

    #[tokio::test]
    async fn a_pipe_reads_what_was_written_before_and_after_it_waited_and_then_its_end() {
        let (mut r, mut w) = pipe();
        w.write_all(b"before").unwrap();
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"before");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.write_all(b"after").unwrap();
        });
        let n = r.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"after");
        writer.join().unwrap();
        assert_eq!(r.read(&mut buf).await.unwrap(), 0, "the write end is closed");
    }

    #[tokio::test]
    async fn many_pipes_share_one_set_and_each_wakes_its_own_reader() {
        let pipes: Vec<_> = (0..600).map(|_| pipe()).collect();
        let set = pipes[0].0 .0.set.clone();
        assert!(pipes.iter().all(|(r, _)| Arc::ptr_eq(&r.0.set, &set)));
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for (i, (mut r, w)) in pipes.into_iter().enumerate() {
            writers.push(w);
            readers.push(tokio::spawn(async move {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                (i, got)
            }));
        }
        // More ready at once than one drain takes (EVENTS), written from another thread.
        std::thread::spawn(move || {
            for (i, mut w) in writers.into_iter().enumerate().rev() {
                w.write_all(format!("pipe {i}").as_bytes()).unwrap();
            }
        });
        for reader in readers {
            let (i, got) = reader.await.unwrap();
            assert_eq!(got, format!("pipe {i}").as_bytes());
        }
        assert!(set.slots().is_empty(), "every slot is freed with its reader");
    }

    #[test]
    fn each_runtime_has_its_own_set() {
        let sets: Vec<Arc<Set>> = (0..2)
            .map(|_| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async { Set::current().unwrap() })
            })
            .collect();
        assert!(!Arc::ptr_eq(&sets[0], &sets[1]));
        // Each runtime's end ended its set's task: only these references are left.
        assert!(sets.iter().all(|set| Arc::strong_count(set) == 1));
    }
}
