//! [`Rsyslog`]: a real rsyslogd, started by a test, receiving syslog over TCP (RFC 6587, octet
//! counting or LF framing) and over TLS (RFC 5425), and writing what it received as one JSON
//! record per line that [`SyslogRecord`] reads back, with the RFC 5424 fields kept apart.
//!
//! - [`available`] says whether `rsyslogd` is installed (Debian's `rsyslog`; TLS needs
//!   `rsyslog-gnutls` too). When it is not, it prints a note and the test skips, unless
//!   `STEWARD_TEST_REQUIRE` names `rsyslog` (as in CI), which makes it a failure.
//! - [`Rsyslog::start`] writes a config into the instance's own temp dir and runs
//!   `rsyslogd -n -f <conf> -i <pidfile>` as the current user, as a [`Daemon`] (killed and
//!   reaped on `Drop`). Nothing outside the temp dir is used: `workDirectory` is there, and
//!   neither `imuxsock` nor `imklog` is loaded. Both `imtcp` listeners bind `127.0.0.1` port 0
//!   and report the port they got through `listenPortFileName`.
//! - The TLS listener (the `gtls` driver) presents a server certificate of [`Rsyslog::pki`]; with
//!   [`Rsyslog::start_with_client_auth`] it also requires a client certificate signed by its CA
//!   (`x509/certvalid`). A client should end its session with close_notify (tokio-rustls does it
//!   on `shutdown`), or rsyslogd logs error -110.
//! - rsyslogd escapes control characters it receives: an embedded newline arrives as `#012`.
//!
//! rsyslogd has no readiness signal other than the files it writes, so waiting (for the port
//! files at start, for records in [`Rsyslog::wait_for_records`]) watches its directory for
//! filesystem events (inotify on Linux, through `notify`) and checks again at each one, up to a
//! deadline. No timer; except that rsyslogd writes a port file just *before* it listens, so
//! [`Rsyslog::start`] then probes each port with [`wait_until`](crate::wait_until) (pauses from
//! 1 ms) until it accepts a connection.

use std::env;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

use crate::pki::Pki;
use crate::{Daemon, DEADLINE};

/// What `STEWARD_TEST_REQUIRE` says to make a missing rsyslogd a failure.
const REQUIRE_NAME: &str = "rsyslog";

/// rsyslogd is in /usr/sbin, which is not on every user's `PATH`.
fn find_rsyslogd() -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("rsyslogd"))
        .find(|p| p.is_file())
}

/// Whether rsyslogd is installed. When it is not, prints a note saying the test is skipped
/// (the caller returns); when `STEWARD_TEST_REQUIRE` names `rsyslog`, panics instead.
#[track_caller]
pub fn available() -> bool {
    if cfg!(windows) {
        // rsyslogd is a Unix daemon (under Wine, its Linux path would even look like a file).
        eprintln!("SKIPPED: rsyslogd runs on Unix only");
        return false;
    }
    if find_rsyslogd().is_some() {
        return true;
    }
    let required =
        env::var("STEWARD_TEST_REQUIRE").is_ok_and(|v| v.split(',').any(|t| t.trim() == REQUIRE_NAME));
    let install = "apt-get install rsyslog rsyslog-gnutls";
    assert!(!required, "rsyslogd is required (STEWARD_TEST_REQUIRE) but not installed: {install}");
    eprintln!("SKIPPED: rsyslogd is not installed ({install})");
    false
}

/// One message as rsyslogd parsed it. Fields the message left out (`-` in RFC 5424) are `-`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SyslogRecord {
    /// Facility * 8 + severity.
    pub pri: u8,
    /// The message's own timestamp, RFC 3339.
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// As sent, brackets included: `[id@32473 key="value"]`.
    pub structured_data: String,
    /// Control characters escaped by rsyslogd (`#012` for a newline).
    pub msg: String,
}

impl SyslogRecord {
    pub fn facility(&self) -> u8 {
        self.pri / 8
    }

    pub fn severity(&self) -> u8 {
        self.pri % 8
    }
}

/// A running rsyslogd; see the module doc.
pub struct Rsyslog {
    // Fields drop in order: rsyslogd is killed and reaped before its directory is removed.
    daemon: Daemon,
    plain: SocketAddr,
    tls: SocketAddr,
    pki: Pki,
    dir: TempDir,
}

/// One line per record, every field a JSON string escaped by rsyslogd (`format="json"`), so
/// that no field can run into the next.
const TEMPLATE: &str = r#"template(name="records" type="list") {
  constant(value="{\"pri\":")             property(name="pri")
  constant(value=",\"timestamp\":\"")      property(name="timereported" dateFormat="rfc3339" format="json")
  constant(value="\",\"hostname\":\"")     property(name="hostname" format="json")
  constant(value="\",\"app_name\":\"")     property(name="app-name" format="json")
  constant(value="\",\"procid\":\"")       property(name="procid" format="json")
  constant(value="\",\"msgid\":\"")        property(name="msgid" format="json")
  constant(value="\",\"structured_data\":\"") property(name="structured-data" format="json")
  constant(value="\",\"msg\":\"")          property(name="msg" format="json")
  constant(value="\"}\n")
}"#;

impl Rsyslog {
    /// Starts rsyslogd with a plain and a TLS listener (server authentication only).
    ///
    /// # Panics
    /// If rsyslogd cannot start, or has not reported both ports within [`DEADLINE`]; the
    /// message has its output. Call [`available`] first.
    #[track_caller]
    pub fn start() -> Rsyslog {
        Self::start_inner(false)
    }

    /// [`Rsyslog::start`], with the TLS listener requiring a client certificate signed by
    /// [`Rsyslog::pki`]'s CA.
    #[track_caller]
    pub fn start_with_client_auth() -> Rsyslog {
        Self::start_inner(true)
    }

    #[track_caller]
    fn start_inner(client_auth: bool) -> Rsyslog {
        let rsyslogd = find_rsyslogd().expect("rsyslogd is installed (call rsyslog::available() first)");
        let dir = tempfile::tempdir().expect("a temp dir for rsyslogd");
        let pki = Pki::generate();
        let files = pki.write_to(dir.path());
        let at = |name: &str| dir.path().join(name).display().to_string();
        let auth = if client_auth { "x509/certvalid" } else { "anon" };
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
{TEMPLATE}
ruleset(name="received") {{
  action(type="omfile" file="{out}" template="records")
}}
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{plain_port}" ruleset="received")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{tls_port}" ruleset="received"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth}"
      streamDriver.CAFile="{ca}" streamDriver.CertFile="{cert}" streamDriver.KeyFile="{key}")
# rsyslogd's own messages, for the failure dumps.
*.* action(type="omfile" file="{internal}")
"#,
            work = dir.path().display(),
            out = at("received.jsonl"),
            plain_port = at("plain.port"),
            tls_port = at("tls.port"),
            ca = files.ca.display(),
            cert = files.server_cert.display(),
            key = files.server_key.display(),
            internal = at("rsyslogd.log"),
        );
        let conf_path = dir.path().join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("write rsyslog.conf");
        let pidfile = dir.path().join("rsyslogd.pid");
        let daemon = Daemon::start(
            rsyslogd,
            ["-n".as_ref(), "-f".as_ref(), conf_path.as_os_str(), "-i".as_ref(), pidfile.as_os_str()],
            dir.path(),
        );
        let port = |name: &str| {
            let text = std::fs::read_to_string(dir.path().join(name)).ok()?;
            text.trim().parse::<u16>().ok().filter(|p| *p != 0)
        };
        let dump = || dump(&daemon, dir.path());
        let (plain, tls) = wait_on_dir(dir.path(), DEADLINE, "rsyslogd's port files", &dump, || {
            Some((port("plain.port")?, port("tls.port")?))
        });
        let addr = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let (plain, tls) = (addr(plain), addr(tls));
        // rsyslogd writes a port file between bind() and listen(): a connection at once may be
        // refused. That gap is microseconds and has no event, so probe with the house wait
        // (pauses from 1 ms). The probes are sessions without data; the TLS one makes
        // rsyslogd log a failed handshake.
        for listener in [plain, tls] {
            crate::wait_until_or_dump(DEADLINE, &format!("rsyslogd listening on {listener}"), dump, || {
                std::net::TcpStream::connect(listener).ok()
            });
        }
        Rsyslog { daemon, plain, tls, pki, dir }
    }

    /// The plain TCP listener.
    pub fn plain_addr(&self) -> SocketAddr {
        self.plain
    }

    /// The TLS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls
    }

    /// The certificates: the CA the client should trust, the client certificate to present.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The records received so far, in the order rsyslogd wrote them.
    ///
    /// # Panics
    /// If a complete line is not a record (the template makes every line one).
    pub fn records(&self) -> Vec<SyslogRecord> {
        let text = std::fs::read_to_string(self.dir.path().join("received.jsonl")).unwrap_or_default();
        // A line without its newline yet is still being written.
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad record from rsyslogd ({e}): {line}"))
            })
            .collect()
    }

    /// Waits until at least `n` records have been received, and returns them all.
    ///
    /// # Panics
    /// After `deadline`, with rsyslogd's output and the records so far.
    #[track_caller]
    pub fn wait_for_records(&self, n: usize, deadline: Duration) -> Vec<SyslogRecord> {
        let dump = || format!("{}\nrecords so far: {:#?}", self.dump(), self.records());
        wait_on_dir(self.dir.path(), deadline, &format!("{n} records from rsyslogd"), &dump, || {
            let records = self.records();
            (records.len() >= n).then_some(records)
        })
    }

    /// rsyslogd's output and its own log, for failure messages.
    pub fn dump(&self) -> String {
        dump(&self.daemon, self.dir.path())
    }
}

fn dump(daemon: &Daemon, dir: &Path) -> String {
    let internal = std::fs::read_to_string(dir.join("rsyslogd.log")).unwrap_or_default();
    format!("{}\n--- rsyslogd.log ---\n{}", daemon.dump(), internal.trim_end())
}

/// Calls `check` now and after each filesystem event in `dir`, until it returns `Some`.
///
/// # Panics
/// After `deadline`, naming `what`, with `dump()`.
#[track_caller]
fn wait_on_dir<T>(
    dir: &Path,
    deadline: Duration,
    what: &str,
    dump: &dyn Fn() -> String,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    use notify::Watcher as _;
    let (tx, events) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_| {
        let _ = tx.send(());
    })
    .expect("a filesystem watcher");
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .unwrap_or_else(|e| panic!("cannot watch {}: {e}", dir.display()));
    let start = Instant::now();
    // Watching starts before the first check, so that no change is missed between the two.
    loop {
        if let Some(value) = check() {
            return value;
        }
        let Some(left) = deadline.checked_sub(start.elapsed()) else { break };
        if events.recv_timeout(left).is_err() {
            if let Some(value) = check() {
                return value;
            }
            break;
        }
        // One check for a burst of events.
        while events.try_recv().is_ok() {}
    }
    panic!("timed out after {deadline:?} waiting for {what}\n{}", dump());
}
