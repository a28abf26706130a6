//! The decisions of the Windows backend (`windows.rs`) that need no Windows call: how each
//! [`StopSignal`] is carried out, the creation flags, and the bookkeeping that keeps steward
//! from reacting to its own console control events. Pure, so it is compiled and unit-tested on
//! every OS, not only where `windows.rs` is.

use std::time::Instant;

use steward_core::config::StopSignal;

/// What the Windows backend does for a stop signal. See `windows.rs` for how each is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowsStop {
    /// A console Ctrl+C to every process on the program's console.
    Console(CtrlEvent),
    /// `WM_CLOSE` to the top-level windows of every process in the program's Job Object.
    Close,
    /// Terminate the whole Job Object at once.
    Kill,
    /// Send nothing: the supervisor waits `stop_timeout`, then kills.
    Nothing,
}

/// The two console control events a process can be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtrlEvent {
    CtrlC,
    CtrlBreak,
}

impl CtrlEvent {
    /// The `CTRL_*_EVENT` value of `GenerateConsoleCtrlEvent` and of a handler's argument.
    pub(crate) fn code(self) -> u32 {
        match self {
            Self::CtrlC => CTRL_C_EVENT,
            Self::CtrlBreak => CTRL_BREAK_EVENT,
        }
    }

    /// For messages: "Ctrl+C", "Ctrl+Break".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CtrlC => "Ctrl+C",
            Self::CtrlBreak => "Ctrl+Break",
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            CTRL_C_EVENT => Some(Self::CtrlC),
            CTRL_BREAK_EVENT => Some(Self::CtrlBreak),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Self::CtrlC => 0,
            Self::CtrlBreak => 1,
        }
    }
}

/// The mapping documented in `windows.rs`: the Unix names a program uses to mean "please stop"
/// (TERM, INT, QUIT, HUP) become Ctrl+C, which console programs treat the same way; the others
/// (USR1, USR2) become Ctrl+Break, the only other event a console program can tell apart.
pub(crate) fn windows_stop(signal: StopSignal) -> WindowsStop {
    match signal {
        StopSignal::CtrlC | StopSignal::Term | StopSignal::Int | StopSignal::Quit | StopSignal::Hup => {
            WindowsStop::Console(CtrlEvent::CtrlC)
        }
        StopSignal::CtrlBreak | StopSignal::Usr1 | StopSignal::Usr2 => {
            WindowsStop::Console(CtrlEvent::CtrlBreak)
        }
        StopSignal::Close => WindowsStop::Close,
        StopSignal::Kill => WindowsStop::Kill,
        StopSignal::None => WindowsStop::Nothing,
    }
}

// Values from the Windows SDK, repeated here so this file compiles on every OS; `windows.rs`
// checks them against windows-sys at compile time.
pub(crate) const CTRL_C_EVENT: u32 = 0;
pub(crate) const CTRL_BREAK_EVENT: u32 = 1;
pub(crate) const CREATE_SUSPENDED: u32 = 0x0000_0004;
pub(crate) const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
pub(crate) const CREATE_NEW_CONSOLE: u32 = 0x0000_0010;
pub(crate) const CREATE_NO_WINDOW: u32 = 0x0800_0000;

/// Creation flags of every program, whatever its stop signal:
/// - `CREATE_NO_WINDOW`: a console of its own, without a window. Ctrl+C and Ctrl+Break then
///   reach exactly the program's tree, and a Ctrl+C typed at steward's own console does not.
/// - `CREATE_SUSPENDED`: it runs no code before it is in its Job Object (`Tree::adopt`).
///
/// Not `CREATE_NEW_PROCESS_GROUP`: it makes the program ignore Ctrl+C (an inherited flag most
/// programs never clear), and with a console per program no group is needed to aim an event.
pub(crate) const CREATION_FLAGS: u32 = CREATE_NO_WINDOW | CREATE_SUSPENDED;

/// Copies of steward's own console control events that have not reached it yet.
///
/// To send Ctrl+C, steward attaches to the program's console and generates the event for the
/// whole console, which includes steward itself (Ctrl+C cannot be aimed at one process group).
/// The system delivers each copy on a new thread, some time later. steward's control handler
/// asks [`OwnCtrlEvents::take`] whether an arriving event is such a copy and swallows it if so;
/// otherwise a late copy would look like a Ctrl+C typed by the user and stop steward.
///
/// A copy that never arrives (the console went away first) stops being expected at `until`, so
/// it cannot swallow a real Ctrl+C later than that.
#[derive(Debug)]
pub(crate) struct OwnCtrlEvents {
    /// Copies expected per event, indexed by [`CtrlEvent::index`].
    pending: [u32; 2],
    /// When the pending copies stop being expected.
    until: Option<Instant>,
}

impl OwnCtrlEvents {
    pub(crate) const fn new() -> Self {
        Self { pending: [0; 2], until: None }
    }

    /// steward is about to generate `event` on a console it is attached to: expect one copy
    /// of it until `until`.
    pub(crate) fn expect(&mut self, event: CtrlEvent, until: Instant) {
        self.pending[event.index()] += 1;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }

    /// Generating `event` failed: its copy will not come.
    pub(crate) fn cancel(&mut self, event: CtrlEvent) {
        let n = &mut self.pending[event.index()];
        *n = n.saturating_sub(1);
    }

    /// Whether a copy of `event` is still on its way at `now`.
    pub(crate) fn is_expected(&mut self, event: CtrlEvent, now: Instant) -> bool {
        self.expire(now);
        self.pending[event.index()] > 0
    }

    /// A control event with handler code `code` arrived at `now`: true if it is one of
    /// steward's own copies, which is then no longer expected.
    pub(crate) fn take(&mut self, code: u32, now: Instant) -> bool {
        let Some(event) = CtrlEvent::from_code(code) else { return false };
        if !self.is_expected(event, now) {
            return false;
        }
        self.pending[event.index()] -= 1;
        true
    }

    fn expire(&mut self, now: Instant) {
        if self.until.is_some_and(|until| now >= until) {
            *self = Self::new();
        }
    }
}

/// A process to reattach to after borrowing another console: any process on steward's console
/// other than steward itself (`list` is what `GetConsoleProcessList` returned).
pub(crate) fn console_companion(list: &[u32], own_pid: u32) -> Option<u32> {
    list.iter().copied().find(|&pid| pid != own_pid && pid != 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_stop_signal_has_a_windows_meaning() {
        use CtrlEvent::*;
        let table = [
            ("TERM", WindowsStop::Console(CtrlC)),
            ("INT", WindowsStop::Console(CtrlC)),
            ("QUIT", WindowsStop::Console(CtrlC)),
            ("HUP", WindowsStop::Console(CtrlC)),
            ("ctrl-c", WindowsStop::Console(CtrlC)),
            ("USR1", WindowsStop::Console(CtrlBreak)),
            ("USR2", WindowsStop::Console(CtrlBreak)),
            ("ctrl-break", WindowsStop::Console(CtrlBreak)),
            ("close", WindowsStop::Close),
            ("KILL", WindowsStop::Kill),
            ("none", WindowsStop::Nothing),
        ];
        assert_eq!(table.len(), StopSignal::NAMES.len(), "a stop signal is missing from this table");
        for (name, want) in table {
            let signal = StopSignal::from_name(name).unwrap_or_else(|| panic!("unknown name {name}"));
            assert_eq!(windows_stop(signal), want, "stop signal {name}");
        }
    }

    #[test]
    fn default_stop_signal_is_ctrl_c_on_windows() {
        assert_eq!(windows_stop(StopSignal::default()), WindowsStop::Console(CtrlEvent::CtrlC));
    }

    #[test]
    fn creation_flags_give_a_hidden_console_and_keep_ctrl_c_enabled() {
        assert_eq!(CREATION_FLAGS & CREATE_NO_WINDOW, CREATE_NO_WINDOW);
        assert_eq!(CREATION_FLAGS & CREATE_SUSPENDED, CREATE_SUSPENDED);
        // Either would defeat the design: a visible window, or Ctrl+C ignored by the program.
        assert_eq!(CREATION_FLAGS & CREATE_NEW_CONSOLE, 0);
        assert_eq!(CREATION_FLAGS & CREATE_NEW_PROCESS_GROUP, 0);
    }

    #[test]
    fn event_codes_round_trip() {
        for event in [CtrlEvent::CtrlC, CtrlEvent::CtrlBreak] {
            assert_eq!(CtrlEvent::from_code(event.code()), Some(event));
        }
        assert_eq!(CtrlEvent::from_code(2), None, "CTRL_CLOSE_EVENT is never ours");
    }

    #[test]
    fn own_copy_is_swallowed_once() {
        let t0 = Instant::now();
        let mut own = OwnCtrlEvents::new();
        own.expect(CtrlEvent::CtrlC, t0 + Duration::from_secs(5));
        assert!(own.is_expected(CtrlEvent::CtrlC, t0));
        assert!(!own.take(CTRL_BREAK_EVENT, t0), "a Ctrl+Break is not the expected Ctrl+C");
        assert!(!own.take(2, t0), "close events pass through");
        assert!(own.take(CTRL_C_EVENT, t0 + Duration::from_millis(1)));
        assert!(!own.take(CTRL_C_EVENT, t0 + Duration::from_millis(2)), "the user's Ctrl+C passes");
    }

    #[test]
    fn two_sends_expect_two_copies() {
        let t0 = Instant::now();
        let mut own = OwnCtrlEvents::new();
        own.expect(CtrlEvent::CtrlBreak, t0 + Duration::from_secs(5));
        own.expect(CtrlEvent::CtrlBreak, t0 + Duration::from_secs(6));
        assert!(own.take(CTRL_BREAK_EVENT, t0));
        assert!(own.take(CTRL_BREAK_EVENT, t0 + Duration::from_millis(5500)));
        assert!(!own.take(CTRL_BREAK_EVENT, t0));
    }

    #[test]
    fn a_copy_that_never_came_expires() {
        let t0 = Instant::now();
        let mut own = OwnCtrlEvents::new();
        own.expect(CtrlEvent::CtrlC, t0 + Duration::from_secs(5));
        assert!(!own.take(CTRL_C_EVENT, t0 + Duration::from_secs(5)), "expired: a real Ctrl+C");
        assert!(!own.is_expected(CtrlEvent::CtrlC, t0), "expiry forgets the copy for good");
    }

    #[test]
    fn a_failed_send_expects_nothing() {
        let t0 = Instant::now();
        let mut own = OwnCtrlEvents::new();
        own.expect(CtrlEvent::CtrlC, t0 + Duration::from_secs(5));
        own.cancel(CtrlEvent::CtrlC);
        own.cancel(CtrlEvent::CtrlC);
        assert!(!own.take(CTRL_C_EVENT, t0));
    }

    #[test]
    fn companion_is_any_other_process_on_the_console() {
        assert_eq!(console_companion(&[10, 20], 10), Some(20));
        assert_eq!(console_companion(&[20, 10], 10), Some(20));
        assert_eq!(console_companion(&[10], 10), None, "alone on its console");
        assert_eq!(console_companion(&[], 10), None, "no console");
    }
}
