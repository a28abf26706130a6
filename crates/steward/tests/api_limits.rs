//! End to end: steward under a low open-file limit, flooded with connections that never
//! finish their headers; and the open-file limit its programs get.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use crate::remote_api::{config, host_port, remote_url, tls_client, Secrets};
use rustls_pki_types::ServerName;
use steward::api::connections::Limits;
use tokio::io::AsyncWriteExt as _;

/// Start `cmd` with RLIMIT_NOFILE `soft`/`hard`.
fn limit_open_files(cmd: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs between fork and exec and only calls setrlimit, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The soft and hard open-file limits of `pid`, from /proc/PID/limits.
fn open_files(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with("Max open files")).unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

/// The hard open-file limit of this test process.
fn own_hard_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to fill in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_max
}

#[test]
fn partial_headers_without_a_token_do_not_starve_steward() {
    let secrets = Secrets::new();
    let cfg = format!(
        "{}\n[programs.later]\ncommand = {}\nautostart = false\n",
        config(&secrets, true),
        child_cmd(&["--trap-term", "--sleep", "1h"])
    );
    // As under `ulimit -n 128`: nothing to raise to.
    let s = Steward::start_command(STEWARD, &cfg, &[], |cmd| limit_open_files(cmd, 128, 128));
    let addr = host_port(&remote_url(&s));
    s.wait_for("web", "started");

    let tls = Arc::new(tls_client(&secrets.cert()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // 200 connections at once, each finishing its TLS handshake (if steward takes it) and
    // then sending half a request with no token.
    let held = rt.block_on(async {
        let attempts = (0..200).map(|_| {
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            let addr = addr.clone();
            tokio::time::timeout(Duration::from_secs(5), async move {
                let tcp = tokio::net::TcpStream::connect(&addr).await.ok()?;
                let name = ServerName::try_from("127.0.0.1").unwrap();
                let mut stream = connector.connect(name, tcp).await.ok()?;
                stream.write_all(b"GET /v1/status HTTP/1.1\r\nHost: steward\r\n").await.ok()?;
                Some(stream)
            })
        });
        let done = futures_util::future::join_all(attempts).await;
        done.into_iter().filter_map(|r| r.ok().flatten()).collect::<Vec<_>>()
    });
    assert!(
        held.len() <= Limits::REMOTE.per_peer,
        "{} connections from one peer were taken; the cap is {}",
        held.len(),
        Limits::REMOTE.per_peer
    );

    // While they are held, the local API answers and a program starts.
    let table = s.cli_ok(["status"]);
    assert!(table.lines().any(|l| l.starts_with("web")), "{table}");
    let started = s.cli_ok(["start", "later"]);
    assert!(started.contains("later: running"), "{started}\n{}", s.daemon().dump());
    assert!(!s.log().contains("Too many open files"), "{}", s.log());
    drop(held);
    s.shutdown();
}

#[test]
fn programs_keep_the_open_file_limit_steward_started_with() {
    let hard = own_hard_limit().min(4096);
    assert!(hard > 256, "this test needs a hard open-file limit above 256, not {hard}");
    let cfg = format!("[programs.web]\ncommand = {}\n", child_cmd(&["--trap-term", "--sleep", "1h"]));
    let s = Steward::start_command(STEWARD, &cfg, &[], |cmd| limit_open_files(cmd, 256, hard));
    let pid = s.wait_started("web");
    assert_eq!(open_files(s.daemon().pid()), (hard, hard), "steward raises its own soft limit");
    assert_eq!(open_files(pid), (256, hard), "the program gets the limit steward started with");
    s.shutdown();
}
