//! systemd's notify protocol on its own: the messages a `Type=notify` service sends to the
//! socket systemd passed in `NOTIFY_SOCKET`. [`crate::run`] speaks it by itself; this is
//! for a program that keeps its own runtime and signal handling and only wants to tell
//! systemd how it is doing, with the same implementation [`crate::run`] uses.
//!
//! ```no_run
//! use steward_service::systemd::{Message, Notify};
//!
//! if let Some(systemd) = Notify::from_env() {
//!     systemd.send(&[Message::Ready, Message::Status("serving")]);
//! }
//! ```
//!
//! What systemd needs to know about the protocol, as this relies on it:
//! - Each [`Notify::send`] is one datagram, so its messages arrive together (`READY=1` with
//!   the `STATUS=` that explains it).
//! - `RELOADING=1` must carry `MONOTONIC_USEC`, read here when it is sent.
//! - `EXTEND_TIMEOUT_USEC` asks for that much more time from now, for a start or a stop.
//! - With `WatchdogSec=` systemd sets `WATCHDOG_USEC` (and `WATCHDOG_PID`); `WATCHDOG=1` must
//!   come more often than that, half of it as systemd advises ([`Notify::watchdog_period`]).

use std::time::Duration;

/// One message of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `READY=1`: started, or done reloading.
    Ready,
    /// `RELOADING=1`, with `MONOTONIC_USEC` (added when sent).
    Reloading,
    /// `STOPPING=1`.
    Stopping,
    /// `STATUS=`: one line for people, shown by `systemctl status`.
    Status(&'a str),
    /// `WATCHDOG=1`.
    Watchdog,
    /// `EXTEND_TIMEOUT_USEC`: the start or stop may take this much more time from now (at
    /// most about 71 minutes: the value is a u32 of microseconds).
    ExtendTimeout(Duration),
}

/// The notify socket systemd passed. Sending to it never blocks the caller for long and
/// never fails loudly: an error is logged at debug level, as systemd may be gone at shutdown.
#[derive(Clone, Copy, Debug)]
pub struct Notify {
    _private: (),
}

impl Notify {
    /// systemd's socket, if `NOTIFY_SOCKET` is set (and not empty).
    pub fn from_env() -> Option<Notify> {
        std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty()).then_some(Notify { _private: () })
    }

    /// Send `messages` together, in one datagram.
    pub fn send(&self, messages: &[Message<'_>]) {
        use sd_notify::NotifyState;
        let mut states = Vec::with_capacity(messages.len() + 1);
        for message in messages {
            match *message {
                Message::Ready => states.push(NotifyState::Ready),
                Message::Reloading => match NotifyState::monotonic_usec_now() {
                    Ok(now) => states.extend([NotifyState::Reloading, now]),
                    Err(e) => tracing::debug!("cannot read the monotonic clock for RELOADING=1: {e}"),
                },
                Message::Stopping => states.push(NotifyState::Stopping),
                Message::Status(text) => states.push(NotifyState::Status(text)),
                Message::Watchdog => states.push(NotifyState::Watchdog),
                Message::ExtendTimeout(more) => states.push(NotifyState::ExtendTimeoutUsec(
                    u32::try_from(more.as_micros()).unwrap_or(u32::MAX),
                )),
            }
        }
        if states.is_empty() {
            return;
        }
        if let Err(e) = sd_notify::notify(&states) {
            tracing::debug!("cannot notify systemd: {e}");
        }
    }

    /// How often to send `WATCHDOG=1`: half the timeout systemd set for this process, if it
    /// set one.
    pub fn watchdog_period(&self) -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|d| d / 2).filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    /// The only test of this crate's unit tests that touches `NOTIFY_SOCKET`; the others are
    /// pure, so setting it for the process races with nothing.
    #[test]
    fn messages_sent_together_arrive_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        let notify = Notify::from_env().expect("NOTIFY_SOCKET is set");
        let mut buf = [0u8; 4096];
        let mut next = || {
            let n = socket.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned).collect::<Vec<_>>()
        };

        notify.send(&[Message::Ready, Message::Status("2 running")]);
        assert_eq!(next(), ["READY=1", "STATUS=2 running"]);
        notify.send(&[Message::Stopping, Message::ExtendTimeout(Duration::from_secs(3))]);
        assert_eq!(next(), ["STOPPING=1", "EXTEND_TIMEOUT_USEC=3000000"]);
        // More than a u32 of microseconds is as much as it holds.
        notify.send(&[Message::ExtendTimeout(Duration::from_secs(100_000))]);
        assert_eq!(next(), [format!("EXTEND_TIMEOUT_USEC={}", u32::MAX)]);
        notify.send(&[Message::Reloading]);
        let reloading = next();
        assert_eq!(reloading[0], "RELOADING=1");
        assert!(reloading[1].starts_with("MONOTONIC_USEC="), "{reloading:?}");
        notify.send(&[Message::Watchdog]);
        assert_eq!(next(), ["WATCHDOG=1"]);
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(Notify::from_env().is_none());
    }
}
