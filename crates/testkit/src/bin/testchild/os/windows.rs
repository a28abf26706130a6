//! Windows console control handling of the test child.
//!
//! Ctrl+C, Ctrl+Break and closing the console reach every process attached to the console
//! (or, for a generated Ctrl+Break, to one console process group). The system calls the
//! handlers on a thread of its own.

use std::fs::File;
use std::io::{self, Write};
use std::os::windows::io::AsHandle;
use std::os::windows::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;
use windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP;

/// Our own handle on stdout for the trap handler, so the message goes out even while the main
/// thread holds Rust's stdout lock.
static TRAP_OUT: OnceLock<File> = OnceLock::new();

pub fn ignore_term() -> io::Result<()> {
    // A null handler with TRUE ignores Ctrl+C (and is inherited); Ctrl+Break needs a handler.
    set_handler(None)?;
    set_handler(Some(ignore))
}

/// Prints `got ctrl N` (N: 0 Ctrl+C, 1 Ctrl+Break, 2 close, 5 logoff, 6 shutdown) and exits 0
/// on the first console control event.
pub fn trap_term() -> io::Result<()> {
    let out = File::from(io::stdout().as_handle().try_clone_to_owned()?);
    let _ = TRAP_OUT.set(out);
    set_handler(Some(trap))
}

fn set_handler(handler: Option<unsafe extern "system" fn(u32) -> BOOL>) -> io::Result<()> {
    // SAFETY: the handlers are plain functions that live as long as the process.
    if unsafe { SetConsoleCtrlHandler(handler, 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

unsafe extern "system" fn ignore(_event: u32) -> BOOL {
    1
}

unsafe extern "system" fn trap(event: u32) -> BOOL {
    if let Some(mut out) = TRAP_OUT.get() {
        let _ = out.write_all(format!("got ctrl {event}\n").as_bytes());
    }
    std::process::exit(0)
}

/// Makes the started program lead a new console process group.
pub fn new_group(cmd: &mut Command) {
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
}

/// Nothing to do: abort() ends the process with a fail-fast exception code.
pub fn prepare_abort() {}

/// Windows has handles, not a table of descriptors to list.
pub fn open_fds() -> io::Result<Vec<i32>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "file descriptors are a Unix thing"))
}
