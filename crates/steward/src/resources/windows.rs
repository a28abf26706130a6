//! Windows: each program's Job Object (`process/windows/mod.rs`).
//!
//! - CPU: `JobObjectBasicAccountingInformation`, the user and kernel time of every process
//!   that has run in the job, including those that have exited.
//! - Memory: the working sets of the processes in the job now
//!   (`JobObjectBasicProcessIdList`, then `K32GetProcessMemoryInfo` on each). The job's own
//!   counters only keep the *peak*, so they cannot say whether a program is above its limit
//!   now. A process that cannot be opened (it just exited) is skipped.
//!
//! `hard_memory_limit` is set elsewhere (`process::ProcessTree::limit_memory`).

use std::io;
use std::mem::size_of;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, FALSE, FILETIME, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    JobObjectBasicAccountingInformation, QueryInformationJobObject, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::Usage;
use crate::process::{job_process_ids, TreeRef};

pub const SUPPORTED: bool = true;

/// Windows counts CPU time in 100 ns units.
const TICKS_PER_SECOND: f64 = 10_000_000.0;

pub fn sample(trees: &[TreeRef]) -> Vec<Option<Usage>> {
    trees.iter().map(|t| t.with_job(job_usage).and_then(Result::ok)).collect()
}

pub fn own() -> Option<Usage> {
    // SAFETY: the pseudo handle of the current process needs no closing.
    let me = unsafe { GetCurrentProcess() };
    let rss_bytes = working_set(me)?;
    let (mut created, mut exited, mut kernel, mut user) =
        (FILETIME::default(), FILETIME::default(), FILETIME::default(), FILETIME::default());
    // SAFETY: four writable FILETIMEs.
    if unsafe { GetProcessTimes(me, &mut created, &mut exited, &mut kernel, &mut user) } == FALSE {
        return None;
    }
    let ticks = |t: FILETIME| ((u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)) as f64;
    Some(Usage { rss_bytes, cpu_seconds: (ticks(kernel) + ticks(user)) / TICKS_PER_SECOND, processes: 1 })
}

fn job_usage(job: HANDLE) -> io::Result<Usage> {
    let mut accounting = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
    // SAFETY: `accounting` is the struct this information class expects, with its size.
    let ok = unsafe {
        QueryInformationJobObject(
            job,
            JobObjectBasicAccountingInformation,
            (&mut accounting as *mut JOBOBJECT_BASIC_ACCOUNTING_INFORMATION).cast(),
            size_of::<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION>() as u32,
            ptr::null_mut(),
        )
    };
    if ok == FALSE {
        return Err(io::Error::last_os_error());
    }
    let pids = job_process_ids(job)?;
    let mut usage = Usage {
        rss_bytes: 0,
        cpu_seconds: (accounting.TotalUserTime + accounting.TotalKernelTime).max(0) as f64 / TICKS_PER_SECOND,
        processes: 0,
    };
    for pid in pids {
        // SAFETY: opening by id; the handle is closed right below.
        let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid) };
        if process.is_null() {
            continue;
        }
        let rss = working_set(process);
        // SAFETY: a handle we own.
        unsafe { CloseHandle(process) };
        if let Some(rss) = rss {
            usage.rss_bytes += rss;
            usage.processes += 1;
        }
    }
    Ok(usage)
}

fn working_set(process: HANDLE) -> Option<u64> {
    let mut counters =
        PROCESS_MEMORY_COUNTERS { cb: size_of::<PROCESS_MEMORY_COUNTERS>() as u32, ..Default::default() };
    let size = counters.cb;
    // SAFETY: `counters` is writable for the size given in `cb`.
    let ok = unsafe { K32GetProcessMemoryInfo(process, &mut counters, size) };
    (ok != FALSE).then_some(counters.WorkingSetSize as u64)
}
