//! Console control events for a program's tree: how steward borrows the program's console
//! to generate Ctrl+C or Ctrl+Break there, swallows its own copy, and gets its own console
//! back. The module doc of `process/windows` says why it is done this way.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{CloseHandle, FALSE, HANDLE, INVALID_HANDLE_VALUE, TRUE};
use windows_sys::Win32::System::Console::{
    AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, GetConsoleMode, GetConsoleProcessList,
    GetStdHandle, SetConsoleCtrlHandler, SetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE,
    STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Threading::GetCurrentProcessId;

use super::{last_error, CallFailed, Tree};
use crate::process::windows_stop::{self, CtrlEvent, OwnCtrlEvents};

/// How long `Tree::signal` waits for steward's own copy of a console event before it lets
/// go of the program's console. Usually well under a millisecond.
const OWN_COPY_WAIT: Duration = Duration::from_millis(250);

/// After this, a copy of steward's own console event that has not arrived is given up on, so
/// a real Ctrl+C typed at steward's console is never swallowed later than this.
const OWN_COPY_EXPIRY: Duration = Duration::from_secs(5);

impl Tree {
    /// Generate `event` on the program's console (see the module doc for the dance).
    pub(super) fn send_console_event(&self, event: CtrlEvent) -> io::Result<()> {
        let _console = lock(&CONSOLE);
        // Writers to stdout and stderr wait meanwhile (a few milliseconds): their lines would
        // otherwise go to the program's console, and the standard handles change under them.
        let _stdout = io::stdout().lock();
        let _stderr = io::stderr().lock();
        install_own_event_filter()?;
        let own = SavedConsole::capture();
        // SAFETY: plain calls; failing (no console to free) is fine.
        unsafe { FreeConsole() };
        let sent = self.attach_to_tree_console().and_then(|()| generate_on_attached_console(event));
        // SAFETY: as above.
        unsafe { FreeConsole() };
        own.restore();
        sent.map_err(|e| {
            let what = format!("cannot send {} to the console of process {}", event.name(), self.pid);
            io::Error::new(e.kind(), CallFailed { what, source: e })
        })
    }

    /// Attach to the console of the program's process, or, if that one has exited, of any
    /// other process of its tree.
    fn attach_to_tree_console(&self) -> io::Result<()> {
        // SAFETY: AttachConsole only takes a process id.
        if unsafe { AttachConsole(self.pid) } != FALSE {
            return Ok(());
        }
        let first_error = last_error("AttachConsole failed");
        for pid in self.process_ids().unwrap_or_default() {
            // SAFETY: as above.
            if pid != self.pid && unsafe { AttachConsole(pid) } != FALSE {
                return Ok(());
            }
        }
        Err(first_error)
    }
}

/// Held while steward is away from its own console: at most one console stop at a time.
static CONSOLE: Mutex<()> = Mutex::new(());

/// Copies of steward's own console events still on their way; see `OwnCtrlEvents`.
pub(super) static OWN_EVENTS: Mutex<OwnCtrlEvents> = Mutex::new(OwnCtrlEvents::new());

/// Notified by [`own_event_filter`] each time it swallows a copy.
static OWN_EVENT_ARRIVED: Condvar = Condvar::new();

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Console control handler that swallows steward's own copies of the events it generates and
/// passes everything else (a real Ctrl+C, console close, logoff, shutdown) down the chain.
unsafe extern "system" fn own_event_filter(ctrl_type: u32) -> BOOL {
    if lock(&OWN_EVENTS).take(ctrl_type, Instant::now()) {
        OWN_EVENT_ARRIVED.notify_all();
        TRUE
    } else {
        FALSE
    }
}

/// (Re)register [`own_event_filter`] so that it is the most recent handler: handlers run from
/// the last registered to the first, so it sees each event before, for example, tokio's.
fn install_own_event_filter() -> io::Result<()> {
    // SAFETY: registering a plain function; removing one not registered just fails.
    unsafe { SetConsoleCtrlHandler(Some(own_event_filter), FALSE) };
    // SAFETY: as above.
    if unsafe { SetConsoleCtrlHandler(Some(own_event_filter), TRUE) } == FALSE {
        return Err(last_error("cannot register a console control handler (SetConsoleCtrlHandler)"));
    }
    Ok(())
}

/// Generate `event` for every process on the console steward is attached to, steward
/// included, and wait (briefly) until steward's own copy has been swallowed.
fn generate_on_attached_console(event: CtrlEvent) -> io::Result<()> {
    lock(&OWN_EVENTS).expect(event, Instant::now() + OWN_COPY_EXPIRY);
    // SAFETY: plain call; group 0 = every process on this console.
    if unsafe { GenerateConsoleCtrlEvent(event.code(), 0) } == FALSE {
        let error = last_error("GenerateConsoleCtrlEvent failed");
        lock(&OWN_EVENTS).cancel(event);
        return Err(error);
    }
    // Wait for the copy while still attached, so that it is certainly delivered; it is
    // expected (and swallowed) until OWN_COPY_EXPIRY even if it comes later.
    let deadline = Instant::now() + OWN_COPY_WAIT;
    let mut own = lock(&OWN_EVENTS);
    while own.is_expected(event, Instant::now()) {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        own = OWN_EVENT_ARRIVED.wait_timeout(own, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    Ok(())
}

/// steward's own console and standard handles, to get back to after borrowing a program's
/// console.
///
/// `AttachConsole` may put handles on the console it attaches to in place of the standard
/// handles (ReactOS, modelled on Windows, does so unconditionally; Wine only fills empty ones).
/// Those from the program's console are closed once steward has left it, so that stops leak
/// nothing; the caller holds the stdout and stderr locks, so no writer still uses them.
struct SavedConsole {
    /// stdin, stdout, stderr as they were (console handles, pipes, files or none), and whether
    /// each was a console handle.
    std_handles: [StdHandle; 3],
    /// Another process on steward's console, to reattach through; None without a console, or
    /// alone on it.
    companion: Option<u32>,
    had_console: bool,
}

#[derive(Clone, Copy)]
struct StdHandle {
    which: STD_HANDLE,
    handle: HANDLE,
    is_console: bool,
}

impl SavedConsole {
    fn capture() -> Self {
        let std_handles = [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE].map(|which| {
            // SAFETY: plain calls; GetConsoleMode only succeeds on a console handle.
            let handle = unsafe { GetStdHandle(which) };
            let mut mode = 0;
            let is_console = unsafe { GetConsoleMode(handle, &mut mode) } != FALSE;
            StdHandle { which, handle, is_console }
        });
        let mut pids = vec![0u32; 16];
        let count = loop {
            // SAFETY: `pids` is writable for the count passed.
            let n = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), pids.len() as u32) } as usize;
            if n <= pids.len() {
                break n;
            }
            pids.resize(n + 4, 0);
        };
        // SAFETY: plain call.
        let own_pid = unsafe { GetCurrentProcessId() };
        let companion = windows_stop::console_companion(&pids[..count], own_pid);
        SavedConsole { std_handles, companion, had_console: count > 0 }
    }

    /// After leaving a program's console: close the standard handles attaching to it opened,
    /// and put steward's back.
    fn drop_borrowed_std_handles(&self) {
        for saved in self.std_handles {
            // SAFETY: a handle that differs from the saved one was opened by AttachConsole
            // (nothing else in steward sets standard handles) and is used by no one else.
            unsafe {
                let current = GetStdHandle(saved.which);
                if current != saved.handle {
                    if !current.is_null() && current != INVALID_HANDLE_VALUE {
                        CloseHandle(current);
                    }
                    SetStdHandle(saved.which, saved.handle);
                }
            }
        }
    }

    /// Back on steward's own console: where the saved handle was a console handle and
    /// attaching opened a new one, keep the new one (the old one may have gone with
    /// `FreeConsole`); pipes and files are put back as they were.
    fn settle_own_std_handles(&self) {
        for saved in self.std_handles {
            // SAFETY: as in `drop_borrowed_std_handles`.
            unsafe {
                let current = GetStdHandle(saved.which);
                if current != saved.handle && !saved.is_console {
                    if !current.is_null() && current != INVALID_HANDLE_VALUE {
                        CloseHandle(current);
                    }
                    SetStdHandle(saved.which, saved.handle);
                }
            }
        }
    }

    /// Steward has left the program's console: get back to its own.
    fn restore(self) {
        self.drop_borrowed_std_handles();
        let reattached = match self.companion {
            // SAFETY: plain call.
            Some(pid) => (unsafe { AttachConsole(pid) }) != FALSE,
            None => !self.had_console,
        };
        let reattach_error = io::Error::last_os_error();
        if reattached && self.companion.is_some() {
            self.settle_own_std_handles();
        }
        // The caller holds the stdout and stderr locks; this thread may still write (they
        // are reentrant), and stderr is steward's again.
        match self.companion {
            Some(pid) if !reattached => tracing::warn!(
                "could not reattach to steward's console through process {pid} after a console stop: {reattach_error}"
            ),
            None if !reattached => {
                tracing::warn!("steward was alone on its console, which closed when steward sent a console stop")
            }
            _ => {}
        }
    }
}
