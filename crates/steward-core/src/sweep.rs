//! What a steward that died (say, by `kill -9`) left behind, and which of it to end.
//!
//! While a program runs, steward keeps a record of its process tree in the state dir: the
//! program's process group with the start time of its leader (field 22 of `/proc/PID/stat`,
//! in clock ticks since boot) and, where steward could make one, the program's cgroup. A
//! clean stop removes the record; a steward that finds one at startup ends what it names.
//!
//! Pids are reused, so a recorded group is only swept when the start times say the
//! processes are the ones steward started: see [`victims`].

/// One program's record. The text form is a few `key value` lines ([`Record::to_text`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub program: String,
    /// The program's process group: its leader's pid, which is the group id, and its start.
    pub group: Option<Group>,
    /// The program's own cgroup (a path under the cgroup2 mount), when it has one.
    pub cgroup: Option<String>,
}

/// A process group as recorded: the leader's pid (the group id) and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    pub pgid: u32,
    pub start: u64,
}

/// What `/proc/PID/stat` says about one process, as far as the sweep cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub pgid: u32,
    /// Start time in clock ticks since boot (field 22).
    pub start: u64,
}

impl Record {
    pub fn to_text(&self) -> String {
        let mut text = format!("program {}\n", self.program);
        if let Some(group) = self.group {
            text.push_str(&format!("group {} {}\n", group.pgid, group.start));
        }
        if let Some(cgroup) = &self.cgroup {
            text.push_str(&format!("cgroup {cgroup}\n"));
        }
        text
    }

    /// The record in `text`, or `None` if it is not one (a torn or foreign file): such a
    /// file names nothing that could safely be killed.
    pub fn parse(text: &str) -> Option<Record> {
        let mut record = Record { program: String::new(), group: None, cgroup: None };
        for line in text.lines() {
            let (key, value) = line.split_once(' ')?;
            match key {
                "program" if !value.is_empty() => record.program = value.to_owned(),
                "group" => {
                    let (pgid, start) = value.split_once(' ')?;
                    let group = Group { pgid: pgid.parse().ok()?, start: start.parse().ok()? };
                    // 0 and 1 are no program's group (0 would mean "my own group" to kill()).
                    if group.pgid <= 1 {
                        return None;
                    }
                    record.group = Some(group);
                }
                "cgroup" if is_program_cgroup(value) => {
                    record.cgroup = Some(value.to_owned());
                }
                _ => return None,
            }
        }
        (!record.program.is_empty()).then_some(record)
    }
}

/// Whether `path` can be a program's cgroup as steward makes them:
/// `<absolute path>/steward-<pid>/program.<name>`. Anything else in a record (a file written
/// by hand, say naming a whole slice) is refused rather than killed.
fn is_program_cgroup(path: &str) -> bool {
    let mut components = path.rsplit('/');
    let (Some(program), Some(steward)) = (components.next(), components.next()) else { return false };
    path.starts_with('/')
        && !path.split('/').any(|c| c == ".." || c == ".")
        && program.strip_prefix("program.").is_some_and(|name| !name.is_empty())
        && steward
            .strip_prefix("steward-")
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// The processes of `procs` to kill for the recorded `group`.
///
/// - If the leader (pid = pgid) still runs, it must have the recorded start time: else the
///   pid was reused by a stranger, and nothing is killed. If it matches, the whole group goes.
/// - If the leader is gone, the group lives on in its other members (a grandchild). A
///   member of our group cannot have started before our leader did, so only members that
///   started at or after the recorded time are killed.
pub fn victims(group: Group, procs: &[ProcStat]) -> Vec<u32> {
    let leader = procs.iter().find(|p| p.pid == group.pgid);
    if leader.is_some_and(|l| l.start != group.start) {
        return Vec::new();
    }
    procs.iter().filter(|p| p.pgid == group.pgid && p.start >= group.start).map(|p| p.pid).collect()
}

/// The pid, process group and start time in the text of `/proc/PID/stat`. The command name
/// (field 2) is in parentheses and may hold spaces and parentheses itself, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_once(' ')?.0.parse().ok()?;
    // After the name: state (3), ppid (4), pgrp (5) ... starttime (22).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat { pid, pgid: fields.get(2)?.parse().ok()?, start: fields.get(19)?.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, pgid: u32, start: u64) -> ProcStat {
        ProcStat { pid, pgid, start }
    }

    #[test]
    fn which_processes_a_record_sweeps() {
        let group = Group { pgid: 100, start: 5000 };
        let stranger = p(7, 7, 10);
        #[rustfmt::skip]
        let table: &[(&str, Vec<ProcStat>, Vec<u32>)] = &[
            ("leader and grandchild",
             vec![p(100, 100, 5000), p(101, 100, 5003), stranger], vec![100, 101]),
            ("leader gone, grandchild left",
             vec![p(101, 100, 5003), stranger], vec![101]),
            ("leader gone, a member older than the leader is not ours",
             vec![p(101, 100, 4000)], vec![]),
            ("the pid was reused by a stranger that leads a group",
             vec![p(100, 100, 9000), p(102, 100, 9001)], vec![]),
            ("the pid was reused by a stranger in another group",
             vec![p(100, 55, 9000), p(101, 100, 5003)], vec![]),
            ("a member that left the group is not found through it",
             vec![p(100, 100, 5000), p(103, 103, 5004)], vec![100]),
            ("nothing left", vec![stranger], vec![]),
        ];
        for (what, procs, want) in table {
            assert_eq!(&victims(group, procs), want, "{what}");
        }
    }

    #[test]
    fn records_read_back_and_bad_ones_are_refused() {
        let full = Record {
            program: "web".into(),
            group: Some(Group { pgid: 4242, start: 123_456 }),
            cgroup: Some("/sys/fs/cgroup/steward-1/program.web".into()),
        };
        let bare = Record { program: "db".into(), group: None, cgroup: None };
        for record in [&full, &bare] {
            assert_eq!(Record::parse(&record.to_text()).as_ref(), Some(record));
        }
        #[rustfmt::skip]
        let bad = [
            "", "group 4242 1\n", "program web\ngroup 4242\n", "program web\ngroup x 1\n",
            "program web\ngroup 1 5\n", "program web\ngroup 0 5\n", "program web\ncgroup relative\n",
            "program web\ncgroup /sys/fs/cgroup/../steward-1/program.web\n", "program web\nother 1\n",
            "program web\ncgroup /sys/fs/cgroup/system.slice\n", "program web\ncgroup /steward-x/program.web\n",
            "program web\ncgroup steward-1/program.web\n", "program web\ncgroup /steward-1/program.\n",
        ];
        for text in bad {
            assert_eq!(Record::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(p(4242, 4240, 987_654)));
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }
}
