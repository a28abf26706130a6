//! Unix signal handling of the test child.
//!
//! `--trap-term` blocks SIGTERM and SIGINT in the main thread before any other thread exists,
//! so every later thread inherits the mask, and one thread takes them with `sigwait`: no code
//! runs in signal context. Programs we start do not inherit the mask (Rust's `Command` clears
//! it in the child). `--ignore-term` sets SIG_IGN, which a started program does inherit.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::{mem, ptr, thread};

const IGNORED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
const TRAPPED: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

pub fn ignore_term() -> io::Result<()> {
    for sig in IGNORED {
        // SAFETY: setting a disposition to SIG_IGN installs no code.
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Prints `got signal N` and exits 0 on the first SIGTERM or SIGINT. Must be called while
/// the process has a single thread.
pub fn trap_term() -> io::Result<()> {
    // Our own descriptor for stdout, so the message goes out even while the main thread holds
    // Rust's stdout lock (say, blocked writing lines).
    let mut out = File::from(io::stdout().as_fd().try_clone_to_owned()?);
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let set = unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in TRAPPED {
            libc::sigaddset(&mut set, sig);
        }
        set
    };
    // SAFETY: `set` is a valid signal set; the old mask is not wanted.
    let err = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    thread::Builder::new().name("trap-term".into()).spawn(move || loop {
        let mut sig = 0;
        // SAFETY: `set` is valid and `sig` a valid place to write.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            let _ = out.write_all(format!("got signal {sig}\n").as_bytes());
            std::process::exit(0);
        }
    })?;
    Ok(())
}

/// Makes the started program lead a new process group.
pub fn new_group(cmd: &mut Command) {
    cmd.process_group(0);
}

/// Before abort(): no core file, which would be slow to write and litter the machine.
pub fn prepare_abort() {
    let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system call with a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
}

/// The open file descriptors, ascending: the entries of /proc/self/fd (Linux) or /dev/fd,
/// without the one the listing itself used (closed by the time each is checked).
pub fn open_fds() -> io::Result<Vec<i32>> {
    let listing = if cfg!(target_os = "linux") { "/proc/self/fd" } else { "/dev/fd" };
    let names: Vec<i32> = std::fs::read_dir(listing)?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let mut open: Vec<i32> =
        names.into_iter().filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1).collect();
    open.sort_unstable();
    Ok(open)
}
