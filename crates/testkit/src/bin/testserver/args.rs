//! The command line of `steward-testserver`, parsed by hand (as `steward-testchild`'s).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: steward-testserver [FLAGS]
An HTTP/1.1 server for steward's rolling-restart tests: it serves the sockets it is passed,
says when it is ready, answers with its pid, and drains on the stop signal.

sockets (at least one is needed):
  (no --listen)          serve the sockets passed the systemd way: on Unix fds 3.. with
                         LISTEN_FDS=n, LISTEN_PID=<this pid>, LISTEN_FDNAMES=a:b (TCP or
                         Unix-domain stream sockets); on Windows by the systemfd protocol
                         (SYSTEMFD_SOCKET_SERVER, SYSTEMFD_SOCKET_SECRET; names in
                         STEWARD_SOCKET_NAMES=a,b). A socket named `admin` is served from
                         the start; the others only once ready.
  --listen ADDR          bind ADDR instead (127.0.0.1:0, [::1]:8080, unix:PATH); repeatable.
                         The negative control: a server that binds its own port.
  --admin ADDR           also bind ADDR, served from the start (for /healthz)
  At the start it prints `socket pid=<pid> role=traffic|admin addr=<addr>` for each socket.

behaviour:
  --rev REV              the revision it answers with (default: $REV, else 0)
  --ready-after D        become ready D after the start (default 0): start accepting, send
                         READY=1 to $NOTIFY_SOCKET if set (Unix), print
                         `ready pid=<pid> addr=<addr>[,<addr>...]`
  --never-ready          never ready (a bad version): no READY=1, no ready line, and the
                         sockets other than admin are held but never accepted from, so on a
                         shared socket the other processes keep taking its connections
  --fail-status          answer every request with 500 (a bad version that does get ready)
  --exit-after D         exit with code 3 D after the start, at once, whatever it is doing
                         (a crashing version)
  --delay D              wait D before answering each GET / (requests in flight at a stop)
  -h, --help             this text
  durations: 300ms, 2s, 1m 30s (humantime)

requests:
  GET /                  200 `pid=<pid> rev=<rev>`, headers x-pid and x-rev
  GET /healthz           200 `ready` once ready, 503 `starting` before
  GET /inflight          how many GET / are being answered now (waiting out --delay)
  anything else          404; with --fail-status every answer is 500

stop: on SIGTERM or SIGINT (Windows: Ctrl+C or Ctrl+Break) it prints `draining pid=<pid>`,
closes every listener at once, finishes the requests in flight (answered with
`Connection: close`; idle keep-alive connections are closed, and one accepted with no request
yet gets 2s to send one), prints `exit pid=<pid> code=0` and exits 0. Connections still
queued on a shared socket stay there for the other holders.

exit codes: 0 after a stop, 1 on an error while running, 2 for a bad command line or no
socket to serve, 3 for --exit-after";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub help: bool,
    pub listen: Vec<ListenAddr>,
    pub admin: Vec<ListenAddr>,
    pub rev: Option<String>,
    pub ready_after: Duration,
    pub never_ready: bool,
    pub fail_status: bool,
    pub exit_after: Option<Duration>,
    pub delay: Duration,
}

/// An address to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    /// A Unix-domain socket's path (refused when binding on Windows).
    Unix(PathBuf),
}

impl ListenAddr {
    fn parse(flag: &str, text: &str) -> Result<ListenAddr, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{flag}: unix: needs a path"));
            }
            return Ok(ListenAddr::Unix(path.into()));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("{flag}: {text:?} is not an address like 127.0.0.1:0 or unix:PATH"))
    }
}

/// Parses the arguments after the program name. Flags take their value as the next argument
/// or after `=` (`--delay=300ms`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut opts = Options::default();
    let mut ready_after = None;
    let mut args = args.into_iter();
    while let Some(arg) = testkit::flags::next_arg(&mut args) {
        let mut arg = arg?;
        let flag = arg.flag.clone();
        let mut value = || arg.value(&mut args);
        match flag.as_str() {
            "-h" | "--help" => opts.help = true,
            "--listen" => opts.listen.push(ListenAddr::parse(&flag, &value()?)?),
            "--admin" => opts.admin.push(ListenAddr::parse(&flag, &value()?)?),
            "--rev" => opts.rev = Some(rev(&value()?)?),
            "--ready-after" => ready_after = Some(duration(&flag, &value()?)?),
            "--never-ready" => opts.never_ready = true,
            "--fail-status" => opts.fail_status = true,
            "--exit-after" => opts.exit_after = Some(duration(&flag, &value()?)?),
            "--delay" => opts.delay = duration(&flag, &value()?)?,
            _ if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ => return Err(format!("unexpected argument {flag:?}")),
        }
        arg.finish()?;
    }
    if opts.never_ready && ready_after.is_some() {
        return Err("--never-ready and --ready-after exclude each other".into());
    }
    opts.ready_after = ready_after.unwrap_or_default();
    Ok(opts)
}

/// A revision goes into a header and a one-line body: printable ASCII, no spaces.
pub fn rev(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) || text.len() > 100 {
        return Err(format!("revision {text:?} must be 1 to 100 printable ASCII characters without spaces"));
    }
    Ok(text.to_owned())
}

fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{flag}: {text:?} is not a duration like 300ms or 2s ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Options, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn everything() {
        let opts = parse_str(&[
            "--listen",
            "127.0.0.1:0",
            "--listen=unix:/tmp/s.sock",
            "--admin",
            "[::1]:9000",
            "--rev",
            "r7",
            "--ready-after",
            "300ms",
            "--fail-status",
            "--exit-after=1m 30s",
            "--delay",
            "2s",
        ])
        .unwrap();
        assert_eq!(
            opts,
            Options {
                help: false,
                listen: vec![
                    ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
                    ListenAddr::Unix("/tmp/s.sock".into())
                ],
                admin: vec![ListenAddr::Tcp("[::1]:9000".parse().unwrap())],
                rev: Some("r7".into()),
                ready_after: Duration::from_millis(300),
                never_ready: false,
                fail_status: true,
                exit_after: Some(Duration::from_secs(90)),
                delay: Duration::from_secs(2),
            }
        );
        assert_eq!(parse_str(&[]), Ok(Options::default()));
        assert!(parse_str(&["--never-ready"]).unwrap().never_ready);
        assert!(parse_str(&["-h"]).unwrap().help);
    }

    #[test]
    fn mistakes() {
        for (bad, why) in [
            (&["--nope"][..], "unknown flag"),
            (&["stray"], "unexpected argument"),
            (&["--listen"], "needs a value"),
            (&["--listen", "localhost"], "not an address"),
            (&["--listen", "unix:"], "needs a path"),
            (&["--delay", "5"], "not a duration"),
            (&["--rev", "a b"], "printable ASCII"),
            (&["--rev", ""], "printable ASCII"),
            (&["--never-ready", "--ready-after", "1s"], "exclude each other"),
            (&["--fail-status=yes"], "takes no value"),
        ] {
            let err = parse_str(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
