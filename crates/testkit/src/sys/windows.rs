//! Windows side of the kit.
//!
//! - A process is alive while its exit code reads `STILL_ACTIVE`; a pid is not reused while
//!   any handle to the process is open, and the harness keeps one (the `Child`) until `Drop`.
//! - There are no process groups to kill at once, and a parent's death leaves its children
//!   running. So the daemon is put in a Job Object with KILL_ON_JOB_CLOSE right after it is
//!   started; its descendants join the job (nested jobs, such as the one steward gives each
//!   program, work since Windows 8), and terminating the job kills them all. Breakaway is
//!   allowed, so a program started with CREATE_BREAKAWAY_FROM_JOB is not refused.
//! - The daemon is assigned a few microseconds after it starts: anything it starts before
//!   that escapes the job. Nothing a test runs starts programs that fast.

use std::io;
use std::mem;
use std::os::windows::io::AsRawHandle;
use std::process::{Child, Command, ExitStatus};
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, STILL_ACTIVE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, SetInformationJobObject,
    TerminateJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_BREAKAWAY_OK,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// A kernel handle, closed on drop.
struct Handle(HANDLE);

impl Handle {
    /// Takes ownership of `handle`; a null one is the error of the call that returned it.
    fn new(handle: HANDLE) -> io::Result<Handle> {
        if handle.is_null() {
            Err(io::Error::last_os_error())
        } else {
            Ok(Handle(handle))
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is open and owned by self.
        unsafe { CloseHandle(self.0) };
    }
}

/// True if a process with this pid exists and has not exited.
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: plain system call; Handle::new checks the result.
    let Ok(process) = Handle::new(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) }) else {
        return false;
    };
    let mut code = 0u32;
    // SAFETY: the handle is open with query rights; `code` is a valid place to write.
    let ok = unsafe { GetExitCodeProcess(process.0, &mut code) } != 0;
    ok && code == STILL_ACTIVE as u32
}

/// Nothing to prepare before the start: the job is joined right after.
pub(crate) fn prepare_daemon(_cmd: &mut Command) {}

/// The daemon's process tree: a Job Object holding it and, through inheritance, everything
/// it starts. Closing the job's last handle kills them all.
pub(crate) struct Tree {
    job: Handle,
}

impl Tree {
    pub(crate) fn adopt(child: &Child) -> io::Result<Tree> {
        // SAFETY: no security attributes, no name.
        let job = Handle::new(unsafe { CreateJobObjectW(ptr::null(), ptr::null()) })?;
        // SAFETY: the structure is plain data; all-zero means "no limit" for every field.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_BREAKAWAY_OK;
        // SAFETY: `limits` is the structure this information class expects, with its size.
        let ok = unsafe {
            SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                mem::size_of_val(&limits) as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both handles are open; the Child keeps its handle for the call's duration.
        if unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tree { job })
    }

    /// Terminates every process in the job. Best effort. Does not wait.
    pub(crate) fn kill(&self) {
        // SAFETY: the job handle is open.
        unsafe { TerminateJobObject(self.job.0, 1) };
    }
}

/// The exit status of `child` if it has exited. The `Child` keeps its handle open, so the pid
/// stays reserved.
pub(crate) fn peek_exit(child: &mut Child) -> io::Result<Option<ExitStatus>> {
    child.try_wait()
}
