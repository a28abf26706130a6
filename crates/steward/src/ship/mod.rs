//! Log shipping: the programs' log files sent to central stores (`[[ship]]`), with nothing
//! lost and nothing blocked. docs/shipping.md is the user's side of this.
//!
//! steward writes and rotates the files itself, so it ships *from the files*: each sink keeps
//! a cursor per stream and reads on from it (`source.rs`); there is no second buffer to jam,
//! and a sink that is down only falls behind. The parts:
//!
//! - [`sink`]: one task per sink: batches, sends, reads the answers, moves the cursors;
//! - [`source`]: reading a stream's files from a cursor, across rotations;
//! - [`store`]: the cursors on disk (atomic, with a backup) and the dead-letter file;
//! - [`transport`]: HTTP/1.1 with keep-alive, TLS and mTLS; a TCP or TLS stream for syslog;
//! - the protocols: [`loki`], [`otlp`], [`elastic`], [`syslog`] (encoders and answers);
//! - the pure rules (cursors, answers, splits, the CRI format) are in `steward_core::ship`.
//!
//! Without `[[ship]]` nothing here runs: no task, no watch on any log file.

pub mod batch;
pub mod elastic;
pub mod loki;
pub mod otlp;
pub mod sink;
pub mod source;
pub mod store;
pub mod syslog;
pub mod transport;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use steward_core::config::{Config, LogFormat, ProgramSpec, SinkKind};
use steward_core::ship::cursor::{Cursor, Loaded};
use tokio::sync::watch;

use crate::logs::{FileWatch, Watches};
use crate::supervise::Control;
use batch::{Origin, Stream};
use sink::{Conn, Sink, Task};
use source::StreamReader;
use store::Store;

/// The sinks, for whoever reports on them (`/metrics`, `steward status`); empty without
/// `[[ship]]`.
#[derive(Clone, Default)]
pub struct Sinks(pub Arc<Vec<Arc<Sink>>>);

impl Sinks {
    /// Each sink's report; `with_lag_bytes` lists the folders of streams that are behind, so
    /// only on a blocking thread.
    pub fn reports(&self, with_lag_bytes: bool) -> Vec<crate::protocol::SinkInfo> {
        let now = std::time::SystemTime::now();
        self.0.iter().map(|s| s.report(now, with_lag_bytes)).collect()
    }
}

/// The running sinks.
pub struct Shipping {
    pub sinks: Sinks,
    registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Which log files are shipped, and by whom: each file's watch, made the first time the file's
/// stream is asked for (at start for every program, later for an instance scaled up or a
/// program a reload added).
struct Registry {
    host: String,
    control: Control,
    sinks: Vec<Arc<Sink>>,
    watches: std::sync::Mutex<HashMap<PathBuf, Arc<FileWatch>>>,
}

impl Registry {
    /// The watch of `program`'s log file at `path` (its `.out.log` or `.err.log`), with a
    /// reader in each sink that ships the program; `None` when none does. `rotated`: the
    /// stream's rotated files, when a listing of the folder is at hand.
    fn watch(
        &self,
        program: &ProgramSpec,
        path: &Path,
        rotated: Option<&[steward_core::rotation::Stamp]>,
    ) -> Option<Arc<FileWatch>> {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watch) = watches.get(path) {
            return Some(watch.clone());
        }
        let covering: Vec<&Arc<Sink>> = self.sinks.iter().filter(|s| s.spec.covers(&program.name)).collect();
        if covering.is_empty() {
            return None;
        }
        let stream = if path.to_string_lossy().ends_with(".err.log") { Stream::Err } else { Stream::Out };
        let origin = Origin {
            host: self.host.clone(),
            program: program.group().to_owned(),
            instance: program.instance,
            stream,
            path: path.display().to_string(),
            pid: None,
        };
        let slots: Vec<Arc<sink::Slot>> = covering.iter().map(|s| s.reserve()).collect();
        let budget = covering.iter().map(|s| s.spec.max_unshipped).max().unwrap_or(0);
        let readers: Vec<Arc<dyn crate::logs::watch::Reader>> =
            slots.iter().map(|s| s.clone() as Arc<dyn crate::logs::watch::Reader>).collect();
        let watch = Arc::new(FileWatch::new(readers, budget));
        let stem = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".log").to_owned())
            .unwrap_or_default();
        let cri = program.log.format == LogFormat::Cri;
        let grouping = program.log.multiline.as_ref().and_then(source::Grouping::of);
        for (sink, slot) in covering.iter().zip(&slots) {
            let (cursor, problem) = load_cursor(&sink.store, &stem, &sink.spec.name, sink.epoch);
            if let Some((step, message)) = problem {
                // Announced as an event too, once the supervisor listens.
                let (control, program, name) =
                    (self.control.clone(), origin.program.clone(), sink.spec.name.clone());
                tokio::spawn(async move { control.publish_ship(&program, &name, step, message).await });
            }
            slot.set_acked(path, cursor);
            let reader = StreamReader::grouped(
                origin.clone(),
                path.to_path_buf(),
                cri,
                Some(watch.clone()),
                cursor,
                grouping.clone(),
            );
            let reader = match rotated {
                Some(stamps) => reader.placed(stamps),
                None => reader,
            };
            sink.arrive(slot, reader, cursor);
        }
        watches.insert(path.to_path_buf(), watch.clone());
        Some(watch)
    }
}

/// A random number: a new cursor epoch, backoff jitter. std's hasher keys come from the OS's
/// random source; the clock and the pid go in too.
pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// This machine's name, as every line carries it.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length, and gethostname writes at most
        // that many bytes.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end]) {
                if !name.is_empty() {
                    return name.to_owned();
                }
            }
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".to_owned())
}

impl Shipping {
    /// Starts a task per `[[ship]]` sink of `config` (`None` without any). Fails, naming the
    /// sink and the file, when a TLS file or token file cannot be read.
    pub fn start(config: &Config, control: Control) -> anyhow::Result<Option<Shipping>> {
        if config.ship.is_empty() {
            return Ok(None);
        }
        let host = host_name();
        let log_dir = &config.supervisor.log_dir;
        let (stop, stopped) = watch::channel(false);
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for spec in &config.ship {
            let store = Arc::new(
                Store::open(&config.supervisor.state_dir, &spec.name)
                    .with_context(|| format!("cannot create the state folder of [[ship]] {}", spec.name))?,
            );
            let epoch = store.epoch(random).with_context(|| {
                format!("cannot save the epoch of [[ship]] {} in {}", spec.name, store.dir().display())
            })?;
            let tls = transport::tls_connector(spec)?;
            let token = match &spec.token_file {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| {
                            format!("cannot read token_file {} of [[ship]] {}", path.display(), spec.name)
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            let conn = match spec.kind {
                SinkKind::Syslog => Conn::Syslog(transport::Syslog::new(spec, tls)),
                _ => Conn::Http(transport::Http::new(spec, tls, token.as_deref())?),
            };
            let sink = Sink::new(spec.clone(), store, epoch);
            let task = Task {
                sink: sink.clone(),
                readers: Vec::new(),
                acked: Vec::new(),
                saving: None,
                unsaved: Vec::new(),
                retry: None,
                conn,
                host: host.clone(),
                control: control.clone(),
            };
            tasks.push(tokio::spawn(task.run(stopped.clone())));
            sinks.push(sink);
        }
        let registry = Arc::new(Registry {
            host,
            control,
            sinks: sinks.clone(),
            watches: std::sync::Mutex::new(HashMap::new()),
        });
        // Every stream of the config, placed from one listing of the folder (no writer runs
        // yet): lines left from before this start are sent first.
        let rotated = list_rotated(log_dir);
        for program in config.programs.values() {
            for stream in [Stream::Out, Stream::Err] {
                let path = log_dir.join(format!("{}.{}.log", program.file_stem(), stream.suffix()));
                let base = format!("{}.{}.log", program.file_stem(), stream.suffix());
                let stamps = rotated.get(&base).map_or(&[][..], Vec::as_slice);
                registry.watch(program, &path, Some(stamps));
            }
        }
        tracing::info!(
            event = "ship",
            "shipping logs to {} sink(s): {}",
            sinks.len(),
            sinks
                .iter()
                .map(|s| format!("{} ({})", s.spec.name, s.spec.kind.name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Some(Shipping { sinks: Sinks(Arc::new(sinks)), registry, stop, tasks }))
    }

    /// For the supervisor: the watch of each log file a sink ships (made on first use for a
    /// program that appears later: an instance scaled up, a program added by a reload).
    pub fn watches(&self) -> Watches {
        let registry = self.registry.clone();
        Some(Arc::new(move |program: &ProgramSpec, path: &Path| registry.watch(program, path, None)))
    }

    /// Stops the sinks, once they sent what the programs wrote last (up to 3 s: a sink that
    /// is down or slow gives up; its lines are sent by the next steward, the cursors having
    /// not moved past them).
    pub async fn stop(self) {
        let drains = self.sinks.0.iter().map(|s| s.drain(std::time::Duration::from_secs(3)));
        futures_util::future::join_all(drains).await;
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
    }
}

/// The rotated files in `log_dir`, by the live file they belong to (`web.out.log`).
fn list_rotated(log_dir: &std::path::Path) -> HashMap<String, Vec<steward_core::rotation::Stamp>> {
    let mut by_base: HashMap<String, Vec<steward_core::rotation::Stamp>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(log_dir) else { return by_base };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else { continue };
        // `BASE.log.STAMP[.gz]`: the base is what comes before the stamp.
        let Some(at) = name.rfind(".log.") else { continue };
        let base = &name[..at + 4];
        if let Some(r) = steward_core::rotation::parse_rotated(base, &name) {
            if r.kind != steward_core::rotation::RotatedKind::GzipTemp {
                by_base.entry(base.to_owned()).or_default().push(r.stamp);
            }
        }
    }
    by_base
}

/// The saved cursor of a stream (a new one has the sink's `epoch`); a damaged one is recovered from its backup (or, when both
/// are gone, the stream is sent again from its oldest file), and said so.
fn load_cursor(
    store: &Store,
    stem: &str,
    sink: &str,
    epoch: u64,
) -> (Cursor, Option<(&'static str, String)>) {
    match store.load(stem) {
        Loaded::Found(cursor) => (cursor, None),
        Loaded::Fresh => (Cursor::new(epoch, None), None),
        Loaded::FromBackup { cursor, problem } => {
            let message = format!(
                "the shipping cursor of {stem}: {problem}: going on from its backup, so one batch may be sent twice"
            );
            tracing::warn!(sink, stream = stem, event = "ship-cursor", "{message}");
            (cursor, Some(("recovered", message)))
        }
        Loaded::Lost { problem } => {
            let message = format!(
                "the shipping cursor of {stem}: {problem}: sending it again from its oldest file (duplicates rather than losses)"
            );
            tracing::error!(sink, stream = stem, event = "ship-cursor", "{message}");
            (Cursor::new(random(), None), Some(("reset", message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_finds_every_streams_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "web.out.log",
            "web.out.log.20261122T031500.123Z",
            "web.out.log.20261122T041500.000Z.gz",
            "web.out.log.20261122T051500.000Z.gz.tmp",
            "a.log.b.err.log.20261122T031500.123Z",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found = list_rotated(dir.path());
        let mut web = found["web.out.log"].clone();
        web.sort();
        assert_eq!(web.len(), 2, "plain and gzipped, not the one being compressed");
        assert_eq!(found["a.log.b.err.log"].len(), 1, "a program name with `.log.` in it");
        assert_eq!(found.len(), 2);
    }
}
