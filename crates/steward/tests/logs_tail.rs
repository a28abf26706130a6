//! `steward logs -n N` on a log whose last line is huge: the reply is capped (and says so),
//! the files are read off the supervisor's thread, and a dozen such requests at once keep
//! steward's memory small.

use std::io::Write;

use crate::common::*;

/// steward's peak resident memory, in KiB (`VmHWM` in /proc/PID/status).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_huge_last_line_gives_a_capped_reply_and_bounded_memory() {
    let s = start("[programs.big]\ncommand = \"never-started\"\nautostart = false\n");
    s.wait_api();
    // A log left by an earlier run: a short line, then one of 50 MB (a progress bar that
    // never printed a newline, say).
    let log = s.log_dir().join("big.out.log");
    std::fs::create_dir_all(s.log_dir()).unwrap();
    let mut f = std::fs::File::create(&log).unwrap();
    f.write_all(b"before\n").unwrap();
    let chunk = vec![b'#'; 1 << 20];
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    drop(f);

    let tails: Vec<_> = (0..12)
        .map(|_| {
            let mut cli = std::process::Command::new(STEWARD);
            cli.arg("-c").arg(s.config_path()).args(["logs", "big", "-n", "1"]);
            std::thread::spawn(move || cli.output().unwrap())
        })
        .collect();
    // The supervisor answers while tails are being read.
    assert_eq!(s.program("big")["state"], "stopped");
    for tail in tails {
        let out = tail.join().unwrap();
        assert!(out.status.success(), "{}", testkit::describe(&out));
        let text = out.stdout;
        assert!(text.len() <= (1 << 20) + 200, "a reply of {} bytes", text.len());
        let (marker, line) = text.split_at(text.iter().position(|&b| b == b'\n').unwrap() + 1);
        let marker = String::from_utf8_lossy(marker);
        assert!(marker.starts_with("[steward: this reply is cut at 1048576 bytes"), "{marker}");
        assert_eq!(line.len(), 1 << 20);
        assert!(line[..line.len() - 1].iter().all(|&b| b == b'#') && line.ends_with(b"\n"));
    }
    let peak = peak_rss_kib(s.daemon().pid());
    assert!(peak < 64 * 1024, "steward's peak RSS was {peak} KiB");
    s.shutdown();
}
