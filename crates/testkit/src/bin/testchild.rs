//! `steward-testchild`: the fake program of steward's tests, one binary for every OS.
//!
//! Each flag asks for one behaviour (exit code, sleep, signal handling, output, a grandchild);
//! flags combine and are carried out in a fixed order, see `--help` ([`args::USAGE`]).
//! Start-up comes first and ends with the `ready` line, so a test that has seen
//! `ready pid=<pid>` can rely on the signal handling, the pidfile, the start line and the
//! grandchild all being in place.
//!
//! Exit codes: the one asked for with `--exit` (0 by default), 2 for a bad command line,
//! 1 if an action fails (say stdout is closed).

// The crate root resolves modules from src/bin/, where cargo would take each file for a binary.
#[path = "testchild/args.rs"]
mod args;

#[cfg_attr(unix, path = "testchild/os/unix.rs")]
#[cfg_attr(windows, path = "testchild/os/windows.rs")]
mod os;

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use args::{End, Grandchild, Options, SignalMode, WriteLines};
use testkit::lines;

/// How long `--spawn-grandchild` waits for the grandchild's pidfile.
const GRANDCHILD_DEADLINE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args_os().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("steward-testchild: {message} (see --help)");
            return ExitCode::from(2);
        }
    };
    if opts.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    match run(&opts) {
        Ok(End::Abort) => {
            os::prepare_abort();
            std::process::abort()
        }
        Ok(End::Exit(code)) => ExitCode::from(code),
        Err(message) => {
            eprintln!("steward-testchild: {message}");
            ExitCode::from(1)
        }
    }
}

/// Carries out every action in order and returns how to end.
fn run(opts: &Options) -> Result<End, String> {
    let pid = std::process::id();

    // The grandchild starts before our signal handling is set up, so it inherits the
    // dispositions this process was started with, not ours.
    let grandchild = match &opts.grandchild {
        Some(spec) => Some(spawn_grandchild(spec)?),
        None => None,
    };
    match opts.signals {
        SignalMode::Default => {}
        SignalMode::Ignore => os::ignore_term().map_err(|e| format!("--ignore-term: {e}"))?,
        SignalMode::Trap => os::trap_term().map_err(|e| format!("--trap-term: {e}"))?,
    }
    if let Some(path) = &opts.pidfile {
        testkit::write_pidfile(path, pid).map_err(|e| format!("--pidfile {}: {e}", path.display()))?;
    }
    if let Some(path) = &opts.append_start {
        append_start(path, pid).map_err(|e| format!("--append-start {}: {e}", path.display()))?;
    }
    if let Some(grandchild) = grandchild {
        say(&format!("grandchild pid={grandchild}"))?;
    }
    if opts.print_ready {
        say(&format!("ready pid={pid}"))?;
    }

    if let Some(spec) = &opts.write_lines {
        write_lines(spec).map_err(|e| format!("--write-lines: {e}"))?;
    }
    if let Some(text) = &opts.partial {
        let mut out = io::stdout().lock();
        out.write_all(text.as_encoded_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("--partial: {e}"))?;
    }
    for name in &opts.env {
        let name_shown = name.to_string_lossy();
        match std::env::var_os(name) {
            Some(value) => say(&format!("env {name_shown}={}", value.to_string_lossy()))?,
            None => say(&format!("env {name_shown} unset"))?,
        }
    }
    if opts.cwd {
        let cwd = std::env::current_dir().map_err(|e| format!("--cwd: {e}"))?;
        say(&format!("cwd {}", cwd.display()))?;
    }
    if opts.list_fds {
        let fds = os::open_fds().map_err(|e| format!("--list-fds: {e}"))?;
        let listed: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
        say(&format!("fds {}", listed.join(" ")))?;
    }
    if let Some(path) = &opts.await_file {
        while !path.exists() {
            thread::sleep(Duration::from_millis(10));
        }
    }
    if let Some(delay) = opts.notify_ready_after {
        thread::sleep(delay);
        notify_ready().map_err(|e| format!("--notify-ready-after: {e}"))?;
        say("sent READY=1")?;
    }
    // Held until the end, so the memory stays in use while sleeping.
    let _allocated = match opts.alloc_mb {
        Some(mib) => {
            let block = allocate_resident(mib);
            say(&format!("allocated {mib} MiB"))?;
            Some(block)
        }
        None => None,
    };
    if let Some(duration) = opts.sleep {
        thread::sleep(duration);
    }
    Ok(opts.end)
}

/// Sends `READY=1` to `$NOTIFY_SOCKET`, as `sd_notify(0, "READY=1")` does.
#[cfg(unix)]
fn notify_ready() -> io::Result<()> {
    let path =
        std::env::var_os("NOTIFY_SOCKET").ok_or_else(|| io::Error::other("NOTIFY_SOCKET is not set"))?;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.send_to(b"READY=1\n", path)?;
    Ok(())
}

#[cfg(not(unix))]
fn notify_ready() -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "sd_notify needs Unix datagram sockets"))
}

/// `mib` MiB with every page written to, so the OS must back all of it (a zeroed allocation
/// alone may stay virtual). `black_box` keeps the writes from being optimised away.
fn allocate_resident(mib: u64) -> Vec<u8> {
    const PAGE: usize = 4096;
    let mut block = vec![0u8; (mib as usize) << 20];
    for i in (0..block.len()).step_by(PAGE) {
        block[i] = 1;
    }
    std::hint::black_box(block)
}

/// Prints one line on stdout and flushes it.
fn say(line: &str) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))
}

fn append_start(path: &Path, pid: u32) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // One write call, so concurrent appenders never interleave within a line.
    file.write_all(format!("start pid={pid}\n").as_bytes())
}

/// Starts a copy of this program that sleeps an hour (or until `--grandchild-await`'s file
/// exists), and returns its pid once it has written its pidfile (if it was asked to). Its
/// stdout and stderr are ours: a reader of our pipes sees them open until the grandchild is
/// gone too, as with real daemons' helpers. With `--grandchild-orphan` a middle copy starts
/// it and exits at once, the way a daemon detaches, so it is an orphan by the time this
/// returns.
fn spawn_grandchild(spec: &Grandchild) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("--spawn-grandchild: {e}"))?;
    if let Some(path) = &spec.pidfile {
        // A previous run's file would be read (so held open) while the grandchild renames its
        // own over it, and Wine refuses to replace a file that is open ("Access denied"): the
        // grandchild would exit and we would wait out GRANDCHILD_DEADLINE.
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(format!("--grandchild-pidfile {}: {e}", path.display()))
            }
            _ => {}
        }
    }
    let mut cmd = Command::new(exe);
    cmd.stdin(Stdio::null());
    if spec.orphan {
        // The middle copy: it starts the grandchild as asked (minus the orphaning), waits for
        // its pidfile and exits. It shares our stdout, so `grandchild pid=` is printed twice:
        // by it, then by us.
        cmd.arg("--spawn-grandchild");
        if let Some(path) = &spec.pidfile {
            cmd.arg("--grandchild-pidfile").arg(path);
        }
        if let Some(path) = &spec.await_file {
            cmd.arg("--grandchild-await").arg(path);
        }
        if spec.new_group {
            cmd.arg("--grandchild-new-group");
        }
        let status = cmd.status().map_err(|e| format!("--grandchild-orphan: {e}"))?;
        if !status.success() {
            return Err(format!("--grandchild-orphan: the middle copy failed ({status})"));
        }
        let path = spec.pidfile.as_deref().ok_or("--grandchild-orphan needs --grandchild-pidfile")?;
        return testkit::read_pidfile(path)
            .ok_or_else(|| format!("--grandchild-orphan: no pid in {}", path.display()));
    }
    match &spec.await_file {
        Some(path) => cmd.arg("--await-file").arg(path),
        None => cmd.args(["--sleep", "1h"]),
    };
    if let Some(path) = &spec.pidfile {
        cmd.arg("--pidfile").arg(path);
    }
    if spec.new_group {
        os::new_group(&mut cmd);
    }
    // The Child is dropped without waiting: the grandchild outlives us, and is neither killed
    // nor sent our signals.
    let child = cmd.spawn().map_err(|e| format!("--spawn-grandchild: {e}"))?;
    let gpid = child.id();
    if let Some(path) = &spec.pidfile {
        wait_for_pidfile(path, gpid)?;
    }
    Ok(gpid)
}

/// Waits until `path` holds `pid`. The grandchild has no other way to tell us it has started
/// (its stdout is ours), so poll, briefly.
fn wait_for_pidfile(path: &Path, pid: u32) -> Result<(), String> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while testkit::read_pidfile(path) != Some(pid) {
        if start.elapsed() > GRANDCHILD_DEADLINE {
            return Err(format!(
                "grandchild pid {pid} did not write {} within {GRANDCHILD_DEADLINE:?}",
                path.display()
            ));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

fn write_lines(spec: &WriteLines) -> io::Result<()> {
    let out: Box<dyn Write> =
        if spec.to_stderr { Box::new(io::stderr().lock()) } else { Box::new(io::stdout().lock()) };
    let mut out = BufWriter::with_capacity(256 * 1024, out);
    let mut line = vec![0; spec.line_len];
    // With --rate: every 10 ms worth of lines, flush and sleep until they are due.
    let pace = spec.rate.map(|rate| (rate, (rate / 100 / spec.line_len as u64).max(1)));
    let start = Instant::now();
    for n in 1..=spec.count {
        lines::fill_line(&mut line, n);
        out.write_all(&line)?;
        if let Some((rate, every)) = pace {
            if n % every == 0 {
                out.flush()?;
                let due = start + Duration::from_secs_f64((n * spec.line_len as u64) as f64 / rate as f64);
                thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    }
    out.flush()
}
