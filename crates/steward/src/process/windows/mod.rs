//! Windows process trees: a Job Object per program, console control events and `WM_CLOSE`.
//!
//! # What Windows does, and how steward uses it
//!
//! - **No process groups, no signals.** The whole tree of a program (grandchildren included)
//!   is held by a Job Object: every process a member creates is a member too. The job is made
//!   with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, so when its last handle closes, everything
//!   still in it dies. steward holds the only handle (not inheritable) in [`Tree`], whose drop
//!   closes it: a supervisor that exits, crashes or is killed leaves nothing behind.
//!   `JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION` also makes a crashing program exit instead of
//!   waiting on an error dialog nobody sees (a service has no desktop to show it on).
//! - **Joining the job before running any code.** A process is created outside any job of
//!   ours and assigned to it afterwards; a child that ran in between could start a grandchild
//!   that escapes the job. So [`prepare`] creates the child with `CREATE_SUSPENDED` and
//!   [`Tree::adopt`] assigns it, then resumes it. std and tokio do not give out the handle of
//!   the main thread that `ResumeThread` needs, so `adopt` finds the child's threads with a
//!   Toolhelp snapshot (a suspended new process has exactly one) and resumes those: the method
//!   of watchexec's command-group / process-wrap. Rejected: `PROC_THREAD_ATTRIBUTE_JOB_LIST`
//!   (creates the process in the job directly, but std's `raw_attribute` is unstable and tokio
//!   cannot pass it), and `NtResumeProcess` (undocumented ntdll call). If steward itself runs in
//!   a job that forbids nesting (before Windows 8), the assignment fails and so does the spawn,
//!   with that error.
//! - **Sockets** (`[programs.NAME.sockets.X]`) are not inherited: [`spawn_offering`] registers
//!   them with steward's handoff server (`sockets/windows.rs`) before creating the process,
//!   binds the offer to its pid while it is still suspended, and keeps the offer in the
//!   [`Tree`] until the process takes them or exits.
//! - **A console per program.** [`prepare`] also sets `CREATE_NO_WINDOW`: the program gets a
//!   console of its own that has no window (Microsoft's console team describes the flag that
//!   way; its documentation is vague). Console control events can then be aimed at exactly the
//!   program's tree, steward's own console (if it runs in one) is not shared with programs, and
//!   a Ctrl+C typed there reaches steward only. GUI programs ignore the flag.
//!
//! # Stop signals
//!
//! [`StopSignal`] names are the config's; the mapping is `windows_stop::windows_stop`:
//!
//! | stop_signal                           | on Windows                                         |
//! |---------------------------------------|----------------------------------------------------|
//! | `ctrl-c`, `TERM` (default), `INT`, `QUIT`, `HUP` | Ctrl+C to every process on the program's console |
//! | `ctrl-break`, `USR1`, `USR2`          | Ctrl+Break to every process on the program's console |
//! | `close`                               | `WM_CLOSE` to the top-level windows of every process in the job |
//! | `KILL`                                | `TerminateJobObject`, like [`Tree::kill`]          |
//! | `none`                                | nothing (the supervisor waits, then kills)         |
//!
//! A console event can only be generated on the console of the caller. So steward, holding a
//! process-wide lock, detaches from its own console (`FreeConsole`), attaches to the
//! program's (`AttachConsole(pid)`), generates the event for the whole console
//! (`GenerateConsoleCtrlEvent(event, 0)`), detaches, and reattaches to its own console through
//! another process still on it. A Ctrl+C cannot be limited to a process group, so steward gets
//! a copy too; instead of `SetConsoleCtrlHandler(NULL, TRUE)` (which children spawned meanwhile
//! would inherit, and which is on or off when the copy arrives, not when it was sent), steward
//! registers a handler of its own, first in line, that swallows exactly the copies it expects
//! (`windows_stop::OwnCtrlEvents`). Ctrl+Break is sent the same way, to the whole console: a
//! process group would need `CREATE_NEW_PROCESS_GROUP`, which makes programs ignore Ctrl+C.
//!
//! While steward borrows a program's console (milliseconds; at most `OWN_COPY_WAIT` more if its
//! own copy is slow), it holds the stdout and stderr locks, so log lines wait instead of going
//! to the program's console. A process spawned meanwhile without `prepare`'s flags would
//! inherit the borrowed console. If steward was alone on its console (started by a double
//! click, say), that console closes at the first console stop and steward runs without one.
//!
//! # Under Wine 8 (the Linux CI)
//!
//! Job Objects, `TerminateJobObject`, `KILL_ON_JOB_CLOSE`, the suspended start and the console
//! Ctrl+C path (own copy swallowed included) work. Ctrl+Break does not: Wine's
//! `GenerateConsoleCtrlEvent` fails for it (error 6 here, with group 0; the notes saw 12 or 6
//! with a process group), so `signal` returns that error and the supervisor goes on to kill at
//! `stop_timeout`. The tests below say so rather than skip.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::sync::{Arc, Weak};

use steward_core::config::StopSignal;
use steward_core::fsm::ExitStatus;
use windows_sys::core::BOOL;
use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_MORE_DATA, FALSE, HANDLE, HWND, INVALID_HANDLE_VALUE, LPARAM, TRUE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectBasicProcessIdList,
    JobObjectExtendedLimitInformation, QueryInformationJobObject, SetInformationJobObject,
    TerminateJobObject, JOBOBJECT_BASIC_PROCESS_ID_LIST, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    OpenThread, ResumeThread, TerminateProcess, THREAD_SUSPEND_RESUME,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GetWindowThreadProcessId, PostMessageW, WM_CLOSE,
};

use super::windows_stop::{self, WindowsStop};
use crate::sockets::Handoff;

// Console control events (Ctrl+C, Ctrl+Break) for a tree: `Tree::send_console_event`.
mod console;

// The pure module spells out SDK values so that it compiles everywhere; check them here.
const _: () = {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_C_EVENT};
    use windows_sys::Win32::System::Threading as t;
    assert!(windows_stop::CTRL_C_EVENT == CTRL_C_EVENT);
    assert!(windows_stop::CTRL_BREAK_EVENT == CTRL_BREAK_EVENT);
    assert!(windows_stop::CREATE_SUSPENDED == t::CREATE_SUSPENDED);
    assert!(windows_stop::CREATE_NEW_PROCESS_GROUP == t::CREATE_NEW_PROCESS_GROUP);
    assert!(windows_stop::CREATE_NEW_CONSOLE == t::CREATE_NEW_CONSOLE);
    assert!(windows_stop::CREATE_NO_WINDOW == t::CREATE_NO_WINDOW);
};

/// Exit code of the processes [`Tree::kill`] terminates (the value std's `Child::kill` uses).
const KILLED_EXIT_CODE: u32 = 1;

/// Set the creation flags every program gets (see the module doc): its own console without a
/// window, and suspended until [`Tree::adopt`] has put it in its Job Object. A child spawned
/// after this call must be passed to `Tree::adopt` at once, or it never runs.
pub(super) fn prepare(cmd: &mut tokio::process::Command) {
    cmd.creation_flags(windows_stop::CREATION_FLAGS);
}

/// Create a program's process from `cmd` (as [`prepare`] and [`Tree::adopt`] do) and offer it
/// `listen` through the socket handoff: the offer is registered before the process exists and
/// bound to its pid while it is still suspended, so it can never ask before steward knows it
/// (`sockets/windows.rs`). The tree holds the offer, which is withdrawn when the process exits.
pub(super) fn spawn_offering(
    program: &str,
    mut cmd: tokio::process::Command,
    listen: &[&socket2::Socket],
) -> io::Result<(tokio::process::Child, Tree)> {
    let handoff = Handoff::offer(program, listen)?;
    cmd.envs(handoff.env());
    prepare(&mut cmd);
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        handoff.started(pid);
    }
    let mut tree = Tree::adopt(&child)?;
    tree.handoff = Some(handoff);
    Ok((child, tree))
}

/// How a process ended. Windows has only exit codes (a u32; crashes are NTSTATUS values such
/// as 0xC0000005, which read as negative here). A killed tree exits with `KILLED_EXIT_CODE`.
pub(super) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    // std gives every Windows status a code; the fallback only keeps this total.
    ExitStatus::Code(status.code().unwrap_or(-1))
}

/// A program's Job Object. Dropping it closes the only handle on the job, which kills every
/// process still in it (`KILL_ON_JOB_CLOSE`).
pub(super) struct Tree {
    /// The job; never inherited by children, so ours is the last handle. Shared only with
    /// [`TreeRef`]s, which hold it weakly and upgrade it for the length of one query.
    job: Arc<OwnedHandle>,
    /// The program's own process (the root of the tree): its console is the one tried first.
    pid: u32,
    /// The sockets offered to that process, until it takes them: held here so that the offer
    /// ends with the process (`spawn_offering`).
    handoff: Option<Handoff>,
}

impl Tree {
    /// Put a child just spawned after [`prepare`] (so still suspended) in a new Job Object,
    /// then let it run. On error the child is terminated: it would otherwise stay suspended.
    pub(super) fn adopt(child: &tokio::process::Child) -> io::Result<Tree> {
        let (Some(process), Some(pid)) = (child.raw_handle(), child.id()) else {
            return Err(io::Error::other("the child exited and was reaped before it joined a Job Object"));
        };
        let process = process as HANDLE;
        Self::adopt_suspended(process, pid).inspect_err(|_| {
            // SAFETY: `process` is the child's handle, owned by `child` and open for this call.
            unsafe { TerminateProcess(process, KILLED_EXIT_CODE) };
        })
    }

    fn adopt_suspended(process: HANDLE, pid: u32) -> io::Result<Tree> {
        let job = Arc::new(new_kill_on_close_job()?);
        // SAFETY: both handles are open; the call only reads them.
        if unsafe { AssignProcessToJobObject(job.as_raw_handle() as HANDLE, process) } == FALSE {
            return Err(last_error(format!(
                "cannot put process {pid} in a Job Object (AssignProcessToJobObject)"
            )));
        }
        // From here on, an early return drops `tree` and so kills the child.
        let tree = Tree { job, pid, handoff: None };
        resume_process(pid)?;
        Ok(tree)
    }

    /// Ask the program to stop the way `signal` says (the mapping is in the module doc).
    pub(super) fn signal(&self, signal: StopSignal) -> io::Result<()> {
        match windows_stop::windows_stop(signal) {
            WindowsStop::Console(event) => self.send_console_event(event),
            WindowsStop::Close => self.close_windows(),
            WindowsStop::Kill => self.kill(),
            WindowsStop::Nothing => Ok(()),
        }
    }

    /// Terminate every process in the job at once, grandchildren included. An empty job is
    /// not an error.
    pub(super) fn kill(&self) -> io::Result<()> {
        // SAFETY: `self.job` is an open job handle.
        if unsafe { TerminateJobObject(self.job_handle(), KILLED_EXIT_CODE) } == FALSE {
            return Err(last_error(format!("cannot terminate the Job Object of process {}", self.pid)));
        }
        Ok(())
    }

    fn job_handle(&self) -> HANDLE {
        self.job.as_raw_handle() as HANDLE
    }

    pub(super) fn reference(&self) -> TreeRef {
        TreeRef { job: Arc::downgrade(&self.job) }
    }

    /// Set the job's memory limit (`JOB_OBJECT_LIMIT_JOB_MEMORY`): the committed memory of
    /// all its processes together. Allocations above it fail. The other limits stay.
    pub(super) fn limit_memory(&self, bytes: u64) -> io::Result<()> {
        let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        let size = size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32;
        // SAFETY: `limits` is the struct this information class expects, with its size.
        let ok = unsafe {
            QueryInformationJobObject(
                self.job_handle(),
                JobObjectExtendedLimitInformation,
                (&mut limits as *mut JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                size,
                ptr::null_mut(),
            )
        };
        if ok == FALSE {
            return Err(last_error(format!(
                "cannot read the limits of the Job Object of process {}",
                self.pid
            )));
        }
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        limits.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
        // SAFETY: as above.
        let ok = unsafe {
            SetInformationJobObject(
                self.job_handle(),
                JobObjectExtendedLimitInformation,
                (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                size,
            )
        };
        if ok == FALSE {
            return Err(last_error(format!(
                "cannot set the memory limit of the Job Object of process {}",
                self.pid
            )));
        }
        Ok(())
    }

    /// The ids of the processes in the job right now (empty once all have exited).
    fn process_ids(&self) -> io::Result<Vec<u32>> {
        job_process_ids(self.job_handle()).map_err(|source| {
            let what = format!("cannot list the processes in the Job Object of process {}", self.pid);
            io::Error::new(source.kind(), CallFailed { what, source })
        })
    }

    /// Post `WM_CLOSE` to every top-level window of every process in the job.
    fn close_windows(&self) -> io::Result<()> {
        let mut search = WindowSearch { pids: self.process_ids()?, found: Vec::new() };
        // SAFETY: the callback only runs during this call, while `search` is alive and
        // borrowed by nothing else.
        unsafe { EnumWindows(Some(collect_job_windows), &mut search as *mut WindowSearch as LPARAM) };
        let mut posted = 0;
        for &hwnd in &search.found {
            // SAFETY: posting to a window that closed meanwhile just fails.
            if unsafe { PostMessageW(hwnd, WM_CLOSE, 0, 0) } != FALSE {
                posted += 1;
            }
        }
        if posted == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "stop_signal \"close\": no top-level window in the tree of process {} to send WM_CLOSE to \
                     (is it a console program? then use \"ctrl-c\")",
                    self.pid
                ),
            ));
        }
        Ok(())
    }
}

/// A program's Job Object, held weakly: the tree still dies when [`Tree`] drops.
#[derive(Clone, Debug)]
pub struct TreeRef {
    job: Weak<OwnedHandle>,
}

impl TreeRef {
    /// Run `query` on the job's handle if the job still exists. The handle is kept open for
    /// the call only.
    pub(crate) fn with_job<T>(&self, query: impl FnOnce(HANDLE) -> io::Result<T>) -> Option<io::Result<T>> {
        let job = self.job.upgrade()?;
        Some(query(job.as_raw_handle() as HANDLE))
    }
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("pid", &self.pid).finish_non_exhaustive()
    }
}

/// A new Job Object that kills its processes when its last handle closes.
fn new_kill_on_close_job() -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes (so not inheritable) and no name.
    let raw = unsafe { CreateJobObjectW(ptr::null(), ptr::null()) };
    if raw.is_null() {
        return Err(last_error("cannot create a Job Object (CreateJobObjectW)"));
    }
    // SAFETY: `raw` is a fresh handle that nothing else owns.
    let job = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags =
        JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    // SAFETY: `limits` is the struct this information class expects, with its size.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle() as HANDLE,
            JobObjectExtendedLimitInformation,
            (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if ok == FALSE {
        return Err(last_error("cannot set KILL_ON_JOB_CLOSE on a Job Object (SetInformationJobObject)"));
    }
    Ok(job)
}

/// Resume the threads of process `pid`, created with `CREATE_SUSPENDED` (so it has one).
fn resume_process(pid: u32) -> io::Result<()> {
    // SAFETY: a thread snapshot (of the whole system; the pid argument only applies to modules).
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if raw == INVALID_HANDLE_VALUE {
        return Err(last_error(format!(
            "cannot list the threads of process {pid} to start it (CreateToolhelp32Snapshot)"
        )));
    }
    // SAFETY: a fresh handle that nothing else owns.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut entry = THREADENTRY32 { dwSize: size_of::<THREADENTRY32>() as u32, ..Default::default() };
    let mut resumed = 0;
    // SAFETY: `entry` has its dwSize set, as Thread32First/Next require.
    let mut more = unsafe { Thread32First(snapshot.as_raw_handle() as HANDLE, &mut entry) } != FALSE;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opening by id; the handle is owned (and closed) right away.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, FALSE, entry.th32ThreadID) };
            if thread.is_null() {
                return Err(last_error(format!(
                    "cannot open thread {} of process {pid} to start it",
                    entry.th32ThreadID
                )));
            }
            // SAFETY: a fresh handle that nothing else owns.
            let thread = unsafe { OwnedHandle::from_raw_handle(thread) };
            // SAFETY: an open thread handle with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(thread.as_raw_handle() as HANDLE) } == u32::MAX {
                return Err(last_error(format!(
                    "cannot resume thread {} of process {pid} (ResumeThread)",
                    entry.th32ThreadID
                )));
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot.as_raw_handle() as HANDLE, &mut entry) } != FALSE;
    }
    if resumed == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("process {pid} has no thread to start")));
    }
    Ok(())
}

/// What [`collect_job_windows`] looks for and finds.
struct WindowSearch {
    pids: Vec<u32>,
    found: Vec<HWND>,
}

/// `EnumWindows` callback: keep the windows that belong to one of `search.pids`.
unsafe extern "system" fn collect_job_windows(hwnd: HWND, search: LPARAM) -> BOOL {
    // SAFETY: `search` is the `&mut WindowSearch` that `close_windows` passed to EnumWindows.
    let search = unsafe { &mut *(search as *mut WindowSearch) };
    let mut pid = 0;
    // SAFETY: `hwnd` comes from EnumWindows; `pid` is writable.
    unsafe { GetWindowThreadProcessId(hwnd, &mut pid) };
    if search.pids.contains(&pid) {
        search.found.push(hwnd);
    }
    TRUE
}

/// A failed Windows call: what steward tried, with the OS error as the source.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct CallFailed {
    what: String,
    #[source]
    source: io::Error,
}

/// The ids of the processes in `job` now. Also used by resource sampling.
pub(crate) fn job_process_ids(job: HANDLE) -> io::Result<Vec<u32>> {
    // The list is a header (two u32) followed by ULONG_PTR ids; a Vec<usize> keeps it aligned.
    let header = offset_of!(JOBOBJECT_BASIC_PROCESS_ID_LIST, ProcessIdList) / size_of::<usize>();
    let mut room = 32;
    loop {
        let mut buf = vec![0usize; header + room];
        // SAFETY: `buf` is writable for the length passed and aligned for the struct.
        let ok = unsafe {
            QueryInformationJobObject(
                job,
                JobObjectBasicProcessIdList,
                buf.as_mut_ptr().cast(),
                (buf.len() * size_of::<usize>()) as u32,
                ptr::null_mut(),
            )
        };
        // SAFETY: `buf` starts with the header and is at least that large.
        let list = unsafe { &*buf.as_ptr().cast::<JOBOBJECT_BASIC_PROCESS_ID_LIST>() };
        let (assigned, listed) =
            (list.NumberOfAssignedProcesses as usize, list.NumberOfProcessIdsInList as usize);
        // SAFETY: reads the calling thread's last error.
        if ok == FALSE && unsafe { GetLastError() } != ERROR_MORE_DATA {
            return Err(io::Error::last_os_error());
        }
        if ok != FALSE && listed >= assigned {
            return Ok(buf[header..header + listed].iter().map(|&id| id as u32).collect());
        }
        room = assigned.max(room * 2); // processes came in between: try again, larger
    }
}

/// The last OS error, wrapped with what was being done.
fn last_error(what: impl Into<String>) -> io::Error {
    let source = io::Error::last_os_error();
    io::Error::new(source.kind(), CallFailed { what: what.into(), source })
}

#[cfg(test)]
mod tests {
    //! These run on Windows, and under Wine through `scripts/ci-windows.sh test`, with the
    //! test kit's fake child (`steward-testchild`, built by its `build` step).

    use std::process::Stdio;

    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::{Child, ChildStdout};
    use tokio::time::timeout;
    use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    use windows_sys::Win32::System::Threading::{OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE};

    use std::time::{Duration, Instant};

    use windows_sys::Win32::Foundation::CloseHandle;

    use super::console::{lock, OWN_EVENTS};
    use super::*;
    use crate::process::windows_stop::CtrlEvent;

    const PATIENCE: Duration = testkit::DEADLINE;
    /// The fake child waiting for a console control event: it prints `got ctrl N`, exits 0.
    const WAIT_CTRL: &[&str] = &["--trap-term", "--print-ready", "--sleep", "1h"];
    /// The fake child with a grandchild: it prints `grandchild pid=N`, then `ready pid=M`.
    const GRANDPARENT: &[&str] = &["--spawn-grandchild", "--print-ready", "--sleep", "1h"];

    /// Start the fake child with `args`, the way `process::spawn` starts programs.
    fn start(args: &[&str]) -> (Child, Tree, BufReader<ChildStdout>) {
        let mut cmd = tokio::process::Command::new(testkit::testchild());
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        prepare(&mut cmd);
        let mut child = cmd.spawn().expect("spawn the fake child");
        let tree = Tree::adopt(&child).expect("adopt the child");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, tree, stdout)
    }

    /// Read the child's stdout until a line starting with `prefix`; return the rest of it.
    async fn wait_for_line(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
        let read = async {
            let mut seen = String::new();
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).await.unwrap() == 0 {
                    panic!("child closed stdout before printing {prefix:?}; it printed:\n{seen}");
                }
                if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                    return rest.trim().to_string();
                }
                seen.push_str(&line);
            }
        };
        timeout(PATIENCE, read)
            .await
            .unwrap_or_else(|_| panic!("no {prefix:?} line from the child within {PATIENCE:?}"))
    }

    async fn exit_code(child: &mut Child) -> Option<i32> {
        let status = timeout(PATIENCE, child.wait()).await.expect("the child did not exit in time").unwrap();
        status.code()
    }

    /// Whether process `pid` is gone (or exits within `PATIENCE`).
    fn process_gone(pid: u32) -> bool {
        // SAFETY: plain calls on a handle owned here.
        unsafe {
            let process = OpenProcess(PROCESS_SYNCHRONIZE, FALSE, pid);
            if process.is_null() {
                return true; // no such process any more
            }
            let waited = WaitForSingleObject(process, PATIENCE.as_millis() as u32);
            CloseHandle(process);
            waited == WAIT_OBJECT_0
        }
    }

    #[tokio::test]
    async fn kill_takes_the_grandchildren_too() {
        let (mut child, tree, mut stdout) = start(GRANDPARENT);
        let grandchild: u32 = wait_for_line(&mut stdout, "grandchild pid=").await.parse().unwrap();
        wait_for_line(&mut stdout, "ready").await;
        let members = tree.process_ids().unwrap();
        assert!(
            members.contains(&child.id().unwrap()) && members.contains(&grandchild),
            "job members {members:?}"
        );
        tree.kill().unwrap();
        assert_eq!(exit_code(&mut child).await, Some(KILLED_EXIT_CODE as i32));
        assert!(process_gone(grandchild), "grandchild {grandchild} survived TerminateJobObject");
        tree.kill().expect("killing an empty job is not an error");
    }

    #[tokio::test]
    async fn dropping_the_tree_kills_it() {
        let (mut child, tree, mut stdout) = start(GRANDPARENT);
        let grandchild: u32 = wait_for_line(&mut stdout, "grandchild pid=").await.parse().unwrap();
        wait_for_line(&mut stdout, "ready").await;
        drop(tree);
        assert!(exit_code(&mut child).await.is_some());
        assert!(process_gone(grandchild), "grandchild {grandchild} survived the job handle closing");
    }

    #[tokio::test]
    async fn term_is_ctrl_c_and_steward_survives_its_own_copy() {
        let (mut child, tree, mut stdout) = start(WAIT_CTRL);
        wait_for_line(&mut stdout, "ready").await;
        tree.signal(StopSignal::Term).expect("send Ctrl+C");
        assert_eq!(wait_for_line(&mut stdout, "got ctrl").await, CtrlEvent::CtrlC.code().to_string());
        assert_eq!(exit_code(&mut child).await, Some(0));
        // This test process was on the child's console too: its copy must have been swallowed
        // (otherwise the default handler would have ended it) and no longer be expected.
        assert!(!lock(&OWN_EVENTS).is_expected(CtrlEvent::CtrlC, Instant::now()), "own copy never arrived");
    }

    #[tokio::test]
    async fn ctrl_break_reaches_the_program() {
        let (mut child, tree, mut stdout) = start(WAIT_CTRL);
        wait_for_line(&mut stdout, "ready").await;
        let sent = tree.signal(StopSignal::CtrlBreak);
        if under_wine() {
            // Wine 8 propagates only Ctrl+C to a console's processes; GenerateConsoleCtrlEvent
            // fails for Ctrl+Break. Should a later Wine learn it, this fails: then drop this branch.
            let error = sent.expect_err("Ctrl+Break under Wine: unexpectedly supported");
            eprintln!("Ctrl+Break is not supported under Wine, as expected: {error}");
            tree.kill().unwrap();
            return;
        }
        sent.expect("send Ctrl+Break");
        assert_eq!(wait_for_line(&mut stdout, "got ctrl").await, CtrlEvent::CtrlBreak.code().to_string());
        assert_eq!(exit_code(&mut child).await, Some(0));
    }

    /// Whether this runs under Wine: its ntdll exports `wine_get_version`.
    fn under_wine() -> bool {
        let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
        // SAFETY: NUL-terminated names; ntdll is always loaded.
        unsafe {
            let module = GetModuleHandleW(ntdll.as_ptr());
            !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    #[tokio::test]
    async fn close_without_windows_says_so_and_none_sends_nothing() {
        let (mut child, tree, mut stdout) = start(WAIT_CTRL);
        wait_for_line(&mut stdout, "ready").await;
        let error = tree.signal(StopSignal::Close).expect_err("a console program has no window");
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
        tree.signal(StopSignal::None).unwrap();
        assert!(child.try_wait().unwrap().is_none(), "close or none stopped the child");
        tree.signal(StopSignal::Kill).unwrap();
        assert_eq!(exit_code(&mut child).await, Some(KILLED_EXIT_CODE as i32));
    }

    #[tokio::test]
    async fn a_child_that_exits_at_once_is_adopted() {
        let (mut child, _tree, _stdout) = start(&["--exit", "3"]);
        assert_eq!(exit_code(&mut child).await, Some(3));
    }
}
