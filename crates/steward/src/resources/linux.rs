//! Linux: one pass over `/proc/*/stat` samples every program at once.
//!
//! `/proc/PID/stat` has all a sample needs on one line: the process group (which program the
//! process belongs to), the CPU ticks of the process and of the children it has reaped, and
//! its resident pages. Reading it takes an open, a read and a close per process; nothing is
//! read for a program that is not asked about, but every process on the machine is looked
//! at once, because only its stat line says which group it is in. The cost for 500 programs
//! is measured by `tests/resources.rs` and written in docs/benchmarks.md.
//!
//! A process that moved itself to a session or group of its own (a daemon that double
//! forks) is not counted, as it is not stopped with the program either.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read;
use std::sync::OnceLock;

use super::Usage;
use crate::process::TreeRef;

pub const SUPPORTED: bool = true;

pub fn sample(trees: &[TreeRef]) -> Vec<Option<Usage>> {
    let mut out = vec![None; trees.len()];
    let by_group: HashMap<libc::pid_t, usize> =
        trees.iter().enumerate().map(|(i, t)| (t.pgid(), i)).collect();
    if by_group.is_empty() {
        return out;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    let units = units();
    let mut path = String::with_capacity(24);
    let mut buf = Vec::with_capacity(512);
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        path.clear();
        let _ = write!(path, "/proc/{pid}/stat");
        // A process that ended meanwhile is simply not counted.
        let Some(stat) = read_stat(&path, &mut buf) else { continue };
        // A zombie uses nothing but its slot; its times go to its parent once it is reaped.
        if stat.zombie {
            continue;
        }
        if let Some(&i) = by_group.get(&stat.pgrp) {
            let usage = out[i].get_or_insert_with(Usage::default);
            usage.rss_bytes += stat.rss_pages * units.page_size;
            usage.cpu_seconds += (stat.utime + stat.stime + stat.cutime + stat.cstime) as f64 / units.ticks;
            usage.processes += 1;
        }
    }
    out
}

pub fn own() -> Option<Usage> {
    let stat = read_stat("/proc/self/stat", &mut Vec::with_capacity(512))?;
    let units = units();
    Some(Usage {
        rss_bytes: stat.rss_pages * units.page_size,
        // steward's children are the programs: their time is theirs, not steward's.
        cpu_seconds: (stat.utime + stat.stime) as f64 / units.ticks,
        processes: 1,
    })
}

/// The fields of a stat line that a sample uses.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    zombie: bool,
    pgrp: libc::pid_t,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    rss_pages: u64,
}

fn read_stat(path: &str, buf: &mut Vec<u8>) -> Option<Stat> {
    buf.clear();
    std::fs::File::open(path).ok()?.read_to_end(buf).ok()?;
    parse_stat(buf)
}

/// Parses `pid (comm) state ppid pgrp ... utime stime cutime cstime ... rss ...`. The command
/// name may hold spaces and parentheses, so the fields are counted from its last `)`.
fn parse_stat(line: &[u8]) -> Option<Stat> {
    let after = line.iter().rposition(|&b| b == b')')?;
    let text = std::str::from_utf8(&line[after + 1..]).ok()?;
    let mut fields = text.split_ascii_whitespace();
    // 0 state, 1 ppid, 2 pgrp, ..., 11 utime, 12 stime, 13 cutime, 14 cstime, ..., 21 rss
    let mut field = |n: usize| fields.nth(n);
    let zombie = field(0)? == "Z";
    let pgrp = field(1)?.parse().ok()?;
    let utime = field(8)?.parse().ok()?;
    let stime = field(0)?.parse().ok()?;
    let cutime = field(0)?.parse::<i64>().ok()?.max(0) as u64;
    let cstime = field(0)?.parse::<i64>().ok()?.max(0) as u64;
    let rss_pages = field(6)?.parse::<i64>().ok()?.max(0) as u64;
    Some(Stat { zombie, pgrp, utime, stime, cutime, cstime, rss_pages })
}

struct Units {
    page_size: u64,
    ticks: f64,
}

fn units() -> &'static Units {
    static UNITS: OnceLock<Units> = OnceLock::new();
    UNITS.get_or_init(|| {
        // SAFETY: sysconf only reads a configuration value.
        let (page, ticks) = unsafe { (libc::sysconf(libc::_SC_PAGESIZE), libc::sysconf(libc::_SC_CLK_TCK)) };
        Units {
            page_size: u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096),
            ticks: if ticks > 0 { ticks as f64 } else { 100.0 },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_names() {
        let line = b"4242 (my (odd) prog) S 1 4240 4240 0 -1 4194560 100 0 0 0 25 7 3 1 20 0 1 0 12345 10485760 2560 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                zombie: false,
                pgrp: 4240,
                utime: 25,
                stime: 7,
                cutime: 3,
                cstime: 1,
                rss_pages: 2560
            })
        );
        assert!(parse_stat(b"7 (z) Z 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 5 0 0").unwrap().zombie);
        assert_eq!(parse_stat(b"4242 (truncated) S 1"), None);
    }

    #[test]
    fn steward_itself_uses_some_memory() {
        let own = own().expect("/proc/self/stat");
        assert!(own.rss_bytes > 1 << 20, "{own:?}");
    }
}
