//! Gzip of rotated log files, off the hot path.
//!
//! One background thread, started by the first [`enqueue`] and shared by every log file,
//! takes rotated files from a queue one at a time. For a rotated file `X` it writes
//! `X.gz.tmp`, syncs it, renames it to `X.gz` and then removes `X`, so at every moment a
//! complete copy of the data exists under a name that retention recognises; a crash
//! leaves at worst `X` beside a stale `X.gz.tmp`, and opening the log file again queues
//! `X` once more. Writers never wait for it: [`enqueue`] only sends on a channel.
//!
//! A file that is gone by the time its turn comes (retention deleted it) is skipped. A
//! file that cannot be compressed is left as it is, with a warning.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use steward_core::rotation::{GZIP_SUFFIX, GZIP_TEMP_SUFFIX};

/// The worker thread's queue and its count of unfinished jobs.
struct Worker {
    /// Rotated files to compress. The receiver lives on the worker thread; the thread runs
    /// for the rest of the process, since this sender (in a static) is never dropped.
    jobs: mpsc::Sender<PathBuf>,
    /// Shared with the worker thread.
    progress: Arc<Progress>,
}

/// Jobs queued or running, and a condvar signalled whenever that count drops to zero.
#[derive(Default)]
struct Progress {
    outstanding: Mutex<usize>,
    idle: Condvar,
}

/// The worker, started on first use; `None` if its thread could not be started (then
/// rotated files are left uncompressed).
static WORKER: OnceLock<Option<Worker>> = OnceLock::new();

/// Queues the rotated file `plain` for compression to `plain.gz`. Never blocks.
pub fn enqueue(plain: PathBuf) {
    let Some(worker) = WORKER.get_or_init(start).as_ref() else { return };
    *lock(&worker.progress.outstanding) += 1;
    if worker.jobs.send(plain).is_err() {
        // The thread is gone (it only ends by panicking); undo the count.
        worker.progress.finished_one();
    }
}

/// Blocks until every queued file has been compressed (or given up on).
pub fn wait_idle() {
    if let Some(Some(worker)) = WORKER.get() {
        let outstanding = lock(&worker.progress.outstanding);
        let _idle = worker.progress.idle.wait_while(outstanding, |n| *n > 0);
    }
}

/// Like [`wait_idle`], for at most `timeout`; returns whether the queue is empty.
pub fn wait_idle_timeout(timeout: Duration) -> bool {
    let Some(Some(worker)) = WORKER.get() else { return true };
    let outstanding = lock(&worker.progress.outstanding);
    let (outstanding, _) = worker
        .progress
        .idle
        .wait_timeout_while(outstanding, timeout, |n| *n > 0)
        .unwrap_or_else(PoisonError::into_inner);
    *outstanding == 0
}

fn start() -> Option<Worker> {
    let (jobs, queue) = mpsc::channel::<PathBuf>();
    let progress = Arc::new(Progress::default());
    let for_thread = Arc::clone(&progress);
    let spawned = thread::Builder::new().name("steward-log-gzip".into()).spawn(move || {
        for plain in queue {
            if let Err(error) = compress_file(&plain) {
                tracing::warn!(file = %plain.display(), %error, "cannot compress a rotated log file; it stays uncompressed");
            }
            for_thread.finished_one();
        }
    });
    match spawned {
        Ok(_) => Some(Worker { jobs, progress }),
        Err(error) => {
            tracing::warn!(%error, "cannot start the log compression thread; rotated log files stay uncompressed");
            None
        }
    }
}

impl Progress {
    fn finished_one(&self) {
        let mut outstanding = lock(&self.outstanding);
        *outstanding = outstanding.saturating_sub(1);
        if *outstanding == 0 {
            self.idle.notify_all();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `plain` -> `plain.gz.tmp` -> `plain.gz`, then removes `plain`.
fn compress_file(plain: &Path) -> io::Result<()> {
    let mut input = match File::open(plain) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let temp = with_suffix(plain, GZIP_TEMP_SUFFIX);
    let written = (|| {
        let file = crate::private::open_options().write(true).create(true).truncate(true).open(&temp)?;
        let out = BufWriter::with_capacity(64 * 1024, file);
        let mut gz = GzEncoder::new(out, Compression::default());
        io::copy(&mut input, &mut gz)?;
        let mut out = gz.finish()?;
        out.flush()?;
        let out = out.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()
    })();
    drop(input);
    let finished = written.and_then(|()| fs::rename(&temp, with_suffix(plain, GZIP_SUFFIX)));
    match finished {
        Ok(()) => match fs::remove_file(plain) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        // Retention deleted the files while we worked: nothing left to do.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let _ = fs::remove_file(&temp);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}
