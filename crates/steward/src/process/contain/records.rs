//! The records of running process trees, for the sweep by a later steward, and the kill of
//! what a record names: shared by the Unix platforms that can tell a process's start time
//! (Linux from `/proc`, macOS from `proc_pidinfo`). Which processes a record may kill is
//! decided in `steward_core::sweep`.
//!
//! The records are a journal, `<state_dir>/trees.journal`, one line per event, each appended
//! with a single `write`:
//!
//! ```text
//! start web.1<TAB>program web<TAB>group 4242 987654<TAB>cgroup /sys/fs/cgroup/steward-7/program.web.1.1
//! end web.1
//! ```
//!
//! A file per run would cost an inode per start, and creating inodes is what made starting
//! 500 programs twice as slow on ext4. The journal is rewritten from the trees that still run
//! once it holds four times what they need (and at least 64 KiB), so a program that restarts
//! all day does not grow it without bound. A torn last line (steward killed mid-write) reads
//! as nothing: a record that does not parse names nothing to kill.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use steward_core::sweep::{self, Group, ProcStat, Record};

use super::Swept;

/// Below this, the journal is never rewritten.
const COMPACT_FLOOR: u64 = 64 * 1024;

/// This steward's journal, opened at its first record.
static JOURNAL: Mutex<Option<Journal>> = Mutex::new(None);

struct Journal {
    state_dir: PathBuf,
    file: File,
    /// The length of the `start` line of every tree that runs, by tree. Not the line: at
    /// 5,000 programs that was 130 bytes a program, for a rewrite that reads the file instead.
    live: BTreeMap<String, u32>,
    /// The bytes of `live`'s lines, kept as they change: summing them at each append made
    /// starting thousands of programs quadratic.
    live_bytes: u64,
    /// Bytes in the file.
    size: u64,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("trees.journal")
}

fn journal() -> MutexGuard<'static, Option<Journal>> {
    JOURNAL.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    fn open(state_dir: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new().create(true).append(true).open(path(state_dir))?;
        let size = file.metadata()?.len();
        Ok(Journal { state_dir: state_dir.to_path_buf(), file, live: BTreeMap::new(), live_bytes: 0, size })
    }

    fn append(&mut self, line: &str) -> io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        if self.size > COMPACT_FLOOR.max(self.live_bytes * 4) {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrite the journal with the live trees only, atomically: their last `start` lines,
    /// read back from the journal itself.
    fn compact(&mut self) -> io::Result<()> {
        let target = path(&self.state_dir);
        let old = fs::read_to_string(&target)?;
        let mut lines: BTreeMap<&str, &str> = BTreeMap::new();
        for line in old.split_inclusive('\n') {
            let Some(body) = line.strip_suffix('\n') else { continue };
            if let Some((tree, _)) = body.strip_prefix("start ").and_then(|rest| rest.split_once('\t')) {
                lines.insert(tree, line);
            } else if let Some(tree) = body.strip_prefix("end ") {
                lines.remove(tree);
            }
        }
        lines.retain(|tree, _| self.live.contains_key(*tree));
        let text: String = lines.into_values().collect();
        let tmp = self.state_dir.join(".trees.journal.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        fs::rename(&tmp, &target)?;
        self.file = OpenOptions::new().append(true).open(&target)?;
        self.size = text.len() as u64;
        Ok(())
    }
}

/// Journal `tree`, of `program`, just started as `pid` (its group leader, which started at
/// `start`), with its cgroup if it has one.
pub(super) fn write_group(
    state_dir: &Path,
    tree: &str,
    program: &str,
    pid: u32,
    start: u64,
    cgroup: Option<String>,
) -> io::Result<()> {
    let record = Record { program: program.to_owned(), group: Some(Group { pgid: pid, start }), cgroup };
    write(state_dir, tree, &record)
}

/// Journal `record` as the record of `tree`, which just started.
fn write(state_dir: &Path, tree: &str, record: &Record) -> io::Result<()> {
    let mut guard = journal();
    if guard.as_ref().is_none_or(|j| j.state_dir != state_dir) {
        *guard = Some(Journal::open(state_dir)?);
    }
    let Some(journal) = guard.as_mut() else { return Ok(()) };
    // Names are letters, digits, `_`, `-` and `.`: no tab or newline to escape.
    let line = format!("start {tree}\t{}\n", record.to_text().trim_end().replace('\n', "\t"));
    journal.live_bytes += line.len() as u64;
    if let Some(old) = journal.live.insert(tree.to_owned(), line.len() as u32) {
        journal.live_bytes -= u64::from(old);
    }
    journal.append(&line)
}

/// Journal that `tree` ended and was swept.
pub(super) fn forget(state_dir: &Path, tree: &str) {
    let mut guard = journal();
    let Some(journal) = guard.as_mut().filter(|j| j.state_dir == state_dir) else { return };
    if let Some(len) = journal.live.remove(tree) {
        journal.live_bytes -= u64::from(len);
        if let Err(e) = journal.append(&format!("end {tree}\n")) {
            tracing::debug!(event = "sweep", "cannot journal the end of {tree}: {e}");
        }
    }
}

/// The records of the trees a previous steward left running in `state_dir`; the journal is
/// removed once read. Called at startup, before this steward records anything.
fn take_all(state_dir: &Path) -> Vec<Record> {
    let file = path(state_dir);
    let Ok(text) = fs::read_to_string(&file) else { return Vec::new() };
    let _ = fs::remove_file(&file);
    replay(&text)
}

/// The trees started and not ended, in `text`.
fn replay(text: &str) -> Vec<Record> {
    let mut live: BTreeMap<&str, Record> = BTreeMap::new();
    for line in text.split_inclusive('\n') {
        // A line without its newline was torn by a kill: it says nothing.
        let Some(line) = line.strip_suffix('\n') else { continue };
        if let Some(rest) = line.strip_prefix("start ") {
            let Some((tree, fields)) = rest.split_once('\t') else { continue };
            match Record::parse(&fields.replace('\t', "\n")) {
                Some(record) => live.insert(tree, record),
                None => live.remove(tree),
            };
        } else if let Some(tree) = line.strip_prefix("end ") {
            live.remove(tree);
        }
    }
    live.into_values().collect()
}

/// End what the records in `state_dir` name: the trees of a steward that died. Called at
/// startup, before any program starts. `processes` lists every process (read only if there
/// is a record); `also` ends what else a record names (a cgroup) and adds the pids it killed.
pub(super) fn sweep(
    state_dir: &Path,
    processes: impl FnOnce() -> Vec<ProcStat>,
    mut also: impl FnMut(&Record, &mut Vec<u32>),
) -> Vec<Swept> {
    let records = take_all(state_dir);
    if records.is_empty() {
        return Vec::new();
    }
    let procs = processes();
    records
        .iter()
        .map(|record| {
            let mut pids = record.group.map(|g| kill_group(g, &procs)).unwrap_or_default();
            also(record, &mut pids);
            pids.sort_unstable();
            pids.dedup();
            Swept { program: record.program.clone(), killed: pids.len() }
        })
        .collect()
}

/// SIGKILL the processes of `procs` that `group` names; returns their pids.
fn kill_group(group: Group, procs: &[ProcStat]) -> Vec<u32> {
    let mut pids = sweep::victims(group, procs);
    pids.retain(|&pid| pid > 1 && pid != std::process::id());
    for &pid in &pids {
        // SAFETY: plain system call on a pid > 1 (never a group, never everything).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal is one per process: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn record(program: &str, pgid: u32) -> Record {
        Record { program: program.into(), group: Some(Group { pgid, start: 7 }), cgroup: None }
    }

    #[test]
    fn the_journal_replays_to_what_still_runs() {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        write(state, "web.1", &record("web", 100)).unwrap();
        write(state, "db.1", &record("db", 200)).unwrap();
        forget(state, "web.1");
        write(state, "web.2", &record("web", 300)).unwrap();
        // A torn last line, as a kill in the middle of a write leaves it.
        OpenOptions::new()
            .append(true)
            .open(path(state))
            .unwrap()
            .write_all(b"start api.1\tprogram a")
            .unwrap();
        let mut left = take_all(state);
        left.sort_by_key(|r| r.group.map(|g| g.pgid));
        assert_eq!(left, [record("db", 200), record("web", 300)]);
        assert!(!path(state).exists(), "read once, then gone");
        *journal() = None;
    }

    #[test]
    fn a_program_that_restarts_all_day_keeps_the_journal_small() {
        let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        write(state, "db.1", &record("db", 200)).unwrap();
        for run in 0..20_000u32 {
            let tree = format!("web.{run}");
            write(state, &tree, &record("web", 1000 + run)).unwrap();
            forget(state, &tree);
        }
        write(state, "web.last", &record("web", 99)).unwrap();
        let size = fs::metadata(path(state)).unwrap().len();
        assert!(size <= COMPACT_FLOOR + 200, "{size} bytes");
        let mut left = take_all(state);
        left.sort_by_key(|r| r.group.map(|g| g.pgid));
        assert_eq!(left, [record("web", 99), record("db", 200)]);
        *journal() = None;
    }

    #[test]
    fn lines_that_are_not_records_name_nothing() {
        let text = "start a.1\tprogram a\tgroup 1 5\n\
                    start b.1\tprogram b\tgroup 300 5\tcgroup relative\n\
                    start c.1 no tab\n\
                    garbage\n\
                    end nothing.1\n\
                    start d.1\tprogram d\tgroup 400 5\n";
        assert_eq!(
            replay(text),
            [Record { program: "d".into(), group: Some(Group { pgid: 400, start: 5 }), cgroup: None }]
        );
    }
}
