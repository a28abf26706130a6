//! The command line of `steward-loadgen`, parsed by hand (as `steward-testchild`'s).

use std::ffi::OsString;
use std::time::Duration;

use testkit::load::{Config, Mode, Target};

pub const USAGE: &str = "\
usage: steward-loadgen (--addr ADDR | --unix PATH) [FLAGS]
HTTP load for steward's rolling-restart tests: K workers send GET requests to a
steward-testserver for a while, then a JSON report goes to stdout: how many requests were
ok, refused, reset, timed out or bad, which pids answered, the longest gap between successes
and the successes per interval. (testkit::load's module doc has the rules.)

  --addr ADDR          a loopback address: 127.0.0.1:8080, [::1]:8080, localhost:8080
  --unix PATH          a Unix-domain socket (Unix only)
  --concurrency K      workers, each with one request in flight (default 32)
  --duration D         how long to load (default 5s, at most 10m)
  --keep-alive         reuse each worker's connection until the server closes it (a close
                       before any byte of a response is retried once: not a failure);
                       default: a new connection per request, with Connection: close
  --timeout D          per request, connecting included (default 5s)
  --path PATH          the request path (default /)
  --interval D         the bucket width of ok_per_interval (default 100ms)
  --records            also list every successful response (sent and complete times, pid, rev)
  -h, --help           this text
  durations: 300ms, 2s, 1m 30s (humantime)

exit codes: 0 if no request failed, 1 if some did, 2 for a bad command line or a load that
cannot start";

/// The longest run accepted: the load must stop by itself.
const MAX_DURATION: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Options {
    pub help: bool,
    pub config: Config,
    pub duration: Duration,
    pub records: bool,
}

/// Parses the arguments after the program name. Flags take their value as the next argument
/// or after `=` (`--duration=2s`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut target: Option<Target> = None;
    let mut help = false;
    let mut records = false;
    let mut keep_alive = false;
    let mut concurrency = None;
    let mut duration = Duration::from_secs(5);
    let mut timeout = None;
    let mut path = None;
    let mut interval = None;
    let mut args = args.into_iter();
    while let Some(arg) = testkit::flags::next_arg(&mut args) {
        let mut arg = arg?;
        let flag = arg.flag.clone();
        let mut value = || arg.value(&mut args);
        match flag.as_str() {
            "-h" | "--help" => help = true,
            "--addr" | "--unix" => {
                if target.is_some() {
                    return Err("give one of --addr and --unix, once".into());
                }
                let text = value()?;
                let text = if flag == "--unix" { format!("unix:{text}") } else { text };
                target = Some(text.parse().map_err(|e| format!("{flag}: {e}"))?);
            }
            "--concurrency" => {
                let text = value()?;
                let k: usize = text.parse().map_err(|_| format!("{flag}: {text:?} is not a whole number"))?;
                if !(1..=1024).contains(&k) {
                    return Err(format!("{flag}: {k} is not in 1..=1024"));
                }
                concurrency = Some(k);
            }
            "--duration" => duration = parse_duration(&flag, &value()?)?,
            "--keep-alive" => keep_alive = true,
            "--timeout" => timeout = Some(parse_duration(&flag, &value()?)?),
            "--path" => path = Some(value()?),
            "--interval" => interval = Some(parse_duration(&flag, &value()?)?),
            "--records" => records = true,
            _ if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ => return Err(format!("unexpected argument {flag:?}")),
        }
        arg.finish()?;
    }
    if duration > MAX_DURATION {
        return Err(format!("--duration: {} is over the limit of 10m", humantime::format_duration(duration)));
    }
    // --help needs no target: a placeholder that is never used.
    let target = match (target, help) {
        (Some(target), _) => target,
        (None, true) => "127.0.0.1:0".parse()?,
        (None, false) => return Err("give --addr ADDR or --unix PATH".into()),
    };
    let mut config = Config::new(target);
    config.mode = if keep_alive { Mode::KeepAlive } else { Mode::Close };
    config.max_duration = duration;
    if let Some(k) = concurrency {
        config.concurrency = k;
    }
    if let Some(t) = timeout {
        config.timeout = t;
    }
    if let Some(p) = path {
        config.path = p;
    }
    if let Some(i) = interval {
        config.interval = i;
    }
    Ok(Options { help, config, duration, records })
}

fn parse_duration(flag: &str, text: &str) -> Result<Duration, String> {
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
            "--addr",
            "127.0.0.1:8080",
            "--concurrency=4",
            "--duration",
            "2s",
            "--keep-alive",
            "--timeout",
            "300ms",
            "--path",
            "/healthz",
            "--interval",
            "1s",
            "--records",
        ])
        .unwrap();
        assert!(opts.records && !opts.help);
        assert_eq!(opts.duration, Duration::from_secs(2));
        let c = &opts.config;
        assert_eq!(c.target, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((c.concurrency, c.mode, c.max_duration), (4, Mode::KeepAlive, Duration::from_secs(2)));
        assert_eq!(
            (c.timeout, c.path.as_str(), c.interval),
            (Duration::from_millis(300), "/healthz", Duration::from_secs(1))
        );

        let defaults = parse_str(&["--addr", "127.0.0.1:1"]).unwrap();
        assert_eq!((defaults.config.concurrency, defaults.config.mode), (32, Mode::Close));
        assert_eq!(defaults.duration, Duration::from_secs(5));
        assert!(parse_str(&["--help"]).unwrap().help);
        #[cfg(unix)]
        assert_eq!(parse_str(&["--unix", "/s"]).unwrap().config.target, "unix:/s".parse().unwrap());
    }

    #[test]
    fn mistakes() {
        for (bad, why) in [
            (&[][..], "give --addr"),
            (&["--addr", "127.0.0.1:1", "--addr", "127.0.0.1:2"], "once"),
            (&["--addr", "nonsense"], "--addr"),
            (&["--addr", "127.0.0.1:1", "--concurrency", "0"], "not in 1..=1024"),
            (&["--addr", "127.0.0.1:1", "--duration", "11m"], "over the limit"),
            (&["--addr", "127.0.0.1:1", "--timeout", "5"], "not a duration"),
            (&["--addr", "127.0.0.1:1", "--records=1"], "takes no value"),
            (&["--addr", "127.0.0.1:1", "extra"], "unexpected argument"),
        ] {
            let err = parse_str(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
