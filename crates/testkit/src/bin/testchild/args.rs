//! The command line of `steward-testchild`, parsed by hand.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use testkit::lines::{MAX_LINE_NUMBER, MIN_LINE_LEN};

pub const USAGE: &str = "\
usage: steward-testchild [FLAGS]   (all flags combine; carried out in this order)
  --spawn-grandchild          start a copy of this program running `--sleep 1h`, in the same
                              process group, with the same stdout and stderr
    --grandchild-pidfile PATH the copy writes its pid to PATH (waited for before going on)
    --grandchild-new-group    the copy leads a new process group (Windows: console group)
    --grandchild-await PATH   the copy exits once PATH exists, instead of sleeping 1h
    --grandchild-orphan       the copy is started by a middle copy that exits once it is up,
                              so it is orphaned (its parent becomes the nearest subreaper or
                              PID 1); needs --grandchild-pidfile
  --ignore-term               ignore SIGTERM, SIGINT, SIGHUP (Windows: Ctrl+C, Ctrl+Break)
  --trap-term                 on SIGTERM or SIGINT print `got signal N` and exit 0
                              (Windows: on a console control event print `got ctrl N`)
  --pidfile PATH              write this program's pid to PATH (atomically)
  --append-start PATH         append `start pid=<pid>` to PATH
  --print-ready               print `ready pid=<pid>` (after all of the above)
                              (`grandchild pid=<pid>` is printed just before it)
  --write-lines N             print N numbered lines (see testkit::lines)
    --line-len L              each L bytes long with the newline, L >= 12 (default 64)
    --stderr                  print them on stderr instead
    --rate B                  at about B bytes a second (paced every 10ms; default: at once)
  --partial TEXT              print TEXT without a newline
  --env NAME                  print `env NAME=<value>` or `env NAME unset` (repeatable)
  --cwd                       print `cwd <path>`
  --list-fds                  print `fds 0 1 2 ...`: the open file descriptors (Unix only)
  --await-file PATH           wait until PATH exists (checked every 10ms)
  --notify-ready-after D      wait D, send the datagram `READY=1` to $NOTIFY_SOCKET (sd_notify;
                              Unix only), then print `sent READY=1`
  --alloc-mb N                allocate N MiB and write to every page of it (so it is resident),
                              then print `allocated N MiB`; kept until the end
  --sleep D                   sleep D: a whole number with ms, s, m or h (500ms, 10s, 1h)
  --exit N                    exit with code N, 0..=255 (default 0)
  --abort                     end by abort() (Unix: killed by SIGABRT, no core file)
exit codes: 2 for a bad command line, 1 if an action fails";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub help: bool,
    pub grandchild: Option<Grandchild>,
    pub signals: SignalMode,
    pub pidfile: Option<PathBuf>,
    pub append_start: Option<PathBuf>,
    pub print_ready: bool,
    pub write_lines: Option<WriteLines>,
    pub partial: Option<OsString>,
    pub env: Vec<OsString>,
    pub cwd: bool,
    pub list_fds: bool,
    pub await_file: Option<PathBuf>,
    pub notify_ready_after: Option<Duration>,
    pub alloc_mb: Option<u64>,
    pub sleep: Option<Duration>,
    pub end: End,
}

#[derive(Debug, Default, PartialEq)]
pub struct Grandchild {
    pub pidfile: Option<PathBuf>,
    pub new_group: bool,
    pub await_file: Option<PathBuf>,
    pub orphan: bool,
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub enum SignalMode {
    #[default]
    Default,
    Ignore,
    Trap,
}

#[derive(Debug, PartialEq, Eq)]
pub struct WriteLines {
    pub count: u64,
    pub line_len: usize,
    pub to_stderr: bool,
    /// Bytes a second; `None`: as fast as they can be written.
    pub rate: Option<u64>,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum End {
    Exit(u8),
    Abort,
}

impl Default for End {
    fn default() -> End {
        End::Exit(0)
    }
}

/// Parses the arguments after the program name. Flags take their value as the next argument
/// or after `=` (`--sleep=1s`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut spawn_grandchild = false;
    let mut grandchild = Grandchild::default();
    let mut lines: Option<u64> = None;
    let mut line_len: Option<usize> = None;
    let mut to_stderr = false;
    let mut rate: Option<u64> = None;
    let mut exit: Option<u8> = None;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg.into_string().map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        let (flag, mut inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg, None),
        };
        let mut value =
            || inline.take().or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => opts.help = true,
            "--spawn-grandchild" => spawn_grandchild = true,
            "--grandchild-pidfile" => grandchild.pidfile = Some(value()?.into()),
            "--grandchild-new-group" => grandchild.new_group = true,
            "--grandchild-await" => grandchild.await_file = Some(value()?.into()),
            "--grandchild-orphan" => grandchild.orphan = true,
            "--ignore-term" => opts.signals = set_signals(opts.signals, SignalMode::Ignore)?,
            "--trap-term" => opts.signals = set_signals(opts.signals, SignalMode::Trap)?,
            "--pidfile" => opts.pidfile = Some(value()?.into()),
            "--append-start" => opts.append_start = Some(value()?.into()),
            "--print-ready" => opts.print_ready = true,
            "--write-lines" => lines = Some(number(&flag, value()?, 0..=MAX_LINE_NUMBER)?),
            "--line-len" => line_len = Some(number(&flag, value()?, MIN_LINE_LEN as u64..=1 << 24)? as usize),
            "--stderr" => to_stderr = true,
            "--rate" => rate = Some(number(&flag, value()?, 1..=1 << 40)?),
            "--partial" => opts.partial = Some(value()?),
            "--env" => opts.env.push(value()?),
            "--cwd" => opts.cwd = true,
            "--list-fds" => opts.list_fds = true,
            "--await-file" => opts.await_file = Some(value()?.into()),
            "--notify-ready-after" => {
                opts.notify_ready_after = Some(parse_duration(&utf8(&flag, value()?)?)?)
            }
            "--alloc-mb" => opts.alloc_mb = Some(number(&flag, value()?, 1..=1 << 16)?),
            "--sleep" => opts.sleep = Some(parse_duration(&utf8(&flag, value()?)?)?),
            "--exit" => exit = Some(number(&flag, value()?, 0..=255)? as u8),
            "--abort" => opts.end = End::Abort,
            _ if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ => return Err(format!("unexpected argument {flag:?}")),
        }
        if inline.is_some() {
            return Err(format!("{flag} takes no value"));
        }
    }

    if spawn_grandchild {
        if grandchild.orphan && grandchild.pidfile.is_none() {
            return Err("--grandchild-orphan needs --grandchild-pidfile".into());
        }
        opts.grandchild = Some(grandchild);
    } else if grandchild != Grandchild::default() {
        return Err("the --grandchild-* flags need --spawn-grandchild".into());
    }
    match lines {
        Some(count) => {
            let line_len = line_len.unwrap_or(64);
            opts.write_lines = Some(WriteLines { count, line_len, to_stderr, rate });
        }
        None if line_len.is_some() || to_stderr || rate.is_some() => {
            return Err("--line-len, --stderr and --rate need --write-lines".into())
        }
        None => {}
    }
    match (exit, opts.end) {
        (Some(_), End::Abort) => return Err("--exit and --abort exclude each other".into()),
        (Some(code), _) => opts.end = End::Exit(code),
        (None, _) => {}
    }
    Ok(opts)
}

fn set_signals(current: SignalMode, new: SignalMode) -> Result<SignalMode, String> {
    if current != SignalMode::Default && current != new {
        return Err("--ignore-term and --trap-term exclude each other".into());
    }
    Ok(new)
}

fn utf8(flag: &str, value: OsString) -> Result<String, String> {
    value.into_string().map_err(|v| format!("{flag}: {v:?} is not UTF-8"))
}

fn number(flag: &str, value: OsString, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    let text = utf8(flag, value)?;
    let n: u64 = text.parse().map_err(|_| format!("{flag}: {text:?} is not a whole number"))?;
    if !range.contains(&n) {
        return Err(format!("{flag}: {n} is not in {}..={}", range.start(), range.end()));
    }
    Ok(n)
}

/// Parses a whole number followed by `ms`, `s`, `m` or `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = || format!("--sleep: {text:?} is not a duration like 500ms, 10s, 2m or 1h");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per_unit).map(Duration::from_millis).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5", "s", "1.5s", "-1s", "1 s", "1d", "1sec", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn everything() {
        let opts = parse_str(&[
            "--spawn-grandchild",
            "--grandchild-pidfile",
            "g.pid",
            "--grandchild-new-group",
            "--grandchild-await",
            "gone",
            "--grandchild-orphan",
            "--trap-term",
            "--pidfile=p.pid",
            "--append-start",
            "starts",
            "--print-ready",
            "--write-lines",
            "3",
            "--line-len",
            "20",
            "--stderr",
            "--rate",
            "1000",
            "--partial",
            "abc",
            "--env",
            "A",
            "--env",
            "B",
            "--cwd",
            "--list-fds",
            "--await-file",
            "go",
            "--notify-ready-after",
            "5ms",
            "--alloc-mb",
            "2",
            "--sleep",
            "1s",
            "--exit",
            "7",
        ])
        .unwrap();
        assert_eq!(
            opts,
            Options {
                help: false,
                grandchild: Some(Grandchild {
                    pidfile: Some("g.pid".into()),
                    new_group: true,
                    await_file: Some("gone".into()),
                    orphan: true,
                }),
                signals: SignalMode::Trap,
                pidfile: Some("p.pid".into()),
                append_start: Some("starts".into()),
                print_ready: true,
                write_lines: Some(WriteLines { count: 3, line_len: 20, to_stderr: true, rate: Some(1000) }),
                partial: Some("abc".into()),
                env: vec!["A".into(), "B".into()],
                cwd: true,
                list_fds: true,
                await_file: Some("go".into()),
                notify_ready_after: Some(Duration::from_millis(5)),
                alloc_mb: Some(2),
                sleep: Some(Duration::from_secs(1)),
                end: End::Exit(7),
            }
        );
        assert_eq!(parse_str(&[]), Ok(Options::default()));
        assert_eq!(parse_str(&["--abort"]).unwrap().end, End::Abort);
        assert_eq!(parse_str(&["--write-lines", "2"]).unwrap().write_lines.unwrap().line_len, 64);
        assert_eq!(parse_str(&["--partial="]).unwrap().partial, Some("".into()));
    }

    #[test]
    fn mistakes() {
        for bad in [
            &["--nope"][..],
            &["stray"],
            &["--exit"],
            &["--exit", "256"],
            &["--exit", "-1"],
            &["--exit", "x"],
            &["--sleep", "5"],
            &["--write-lines", "1", "--line-len", "11"],
            &["--write-lines", "10000000000"],
            &["--line-len", "20"],
            &["--stderr"],
            &["--rate", "1000"],
            &["--write-lines", "1", "--rate", "0"],
            &["--grandchild-pidfile", "x"],
            &["--grandchild-orphan"],
            &["--spawn-grandchild", "--grandchild-orphan"],
            &["--ignore-term", "--trap-term"],
            &["--exit", "1", "--abort"],
            &["--cwd=yes"],
            &["--alloc-mb", "0"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
    }
}
