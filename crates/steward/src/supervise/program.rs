//! One task per program: it owns the program's state machine, its current process and its
//! one timer, and turns real events (a command, the child's exit, the timer) into
//! [`Event`]s, then carries out the [`Action`]s that come back.
//!
//! The task waits in one `select!` on exactly those three sources, plus, for a program with
//! `ready = "notify"`, its notify socket (`READY=1` becomes [`Event::Ready`]); it never polls.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use steward_core::config::{ProgramSpec, Readiness};
use steward_core::fsm::{Action, Change, Event, ExitStatus, Machine, Policy, State};
use tokio::sync::{broadcast, mpsc};

use tokio::task::JoinHandle;

use super::commands;
use super::control::LogAccess;
use super::event::{Event as Published, EventKind, Stream};
use super::notify::{self as notify_socket, NotifySocket};
use super::status_cell::{self, StatusSender, StatusWatch};
use crate::logs::{self, SharedLog};
use crate::process::{self, ProcessTree};
use crate::sockets::{self, Listeners};

/// What a program looks like from outside, kept current in a `watch` channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub state: State,
    pub pid: Option<u32>,
    /// Wall-clock time the current process was spawned.
    pub since: Option<SystemTime>,
    pub restarts: u64,
    pub last_exit: Option<ExitStatus>,
    pub last_error: Option<String>,
}

impl Status {
    fn of(m: &Machine, since: Option<SystemTime>) -> Status {
        Status {
            state: m.state(),
            pid: m.pid(),
            since,
            restarts: m.restarts_total(),
            last_exit: m.last_exit(),
            last_error: m.last_error().map(str::to_owned),
        }
    }
}

/// A state change of one program, sent to the supervisor.
#[derive(Clone, Debug)]
pub struct Notice {
    pub program: Arc<str>,
    /// Which task sent it: a reload replaces a program's task, and a late notice from the
    /// old one must not be mistaken for the new one's.
    pub generation: u64,
    pub change: Change,
    pub status: Status,
    /// The process did not stop within its `stop_timeout` and its tree was killed before
    /// this change.
    pub killed: bool,
}

/// The supervisor's handle on a program task.
pub struct ProgramHandle {
    pub spec: Arc<ProgramSpec>,
    generation: u64,
    logs: Arc<ProgramLogs>,
    commands: commands::Sender,
    status: StatusWatch,
    /// The running process's tree, for resource sampling (`resources`).
    tree: Arc<std::sync::Mutex<Option<process::TreeRef>>>,
    task: JoinHandle<()>,
    /// Whether its notify socket has the alternate name (see [`Setup::beside`]).
    notify_alternate: bool,
}

/// What a program task gets from the supervisor besides its spec.
pub struct Setup<'a> {
    pub log_dir: &'a Arc<std::path::Path>,
    pub state_dir: &'a Arc<std::path::Path>,
    pub notices: mpsc::UnboundedSender<Notice>,
    pub reports: mpsc::UnboundedSender<Published>,
    /// The program's listening sockets, passed to every process.
    pub listeners: Listeners,
    /// A task whose process this one's replaces in a rolling restart: the two write the same
    /// log files, and take turns with the notify socket's name, since both run at once.
    pub beside: Option<&'a ProgramHandle>,
    /// The watches of the log files that sinks ship.
    pub watches: &'a crate::logs::Watches,
}

impl ProgramHandle {
    /// Start the task (the program itself stays Stopped until it gets `Event::Start`).
    pub fn spawn(spec: Arc<ProgramSpec>, setup: Setup<'_>) -> Self {
        let machine = Machine::new(Policy::from_spec(&spec));
        let (status_tx, status) = status_cell::channel(Status::of(&machine, None));
        let (commands, rx) = commands::queue();
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let logs = match setup.beside {
            Some(other) => other.logs.clone(),
            None => Arc::new(ProgramLogs::new(setup.log_dir, &spec, setup.watches)),
        };
        let notify_alternate = setup.beside.is_some_and(|other| !other.notify_alternate);
        let task = ProgramTask {
            name: Arc::from(spec.name.as_str()),
            generation,
            spec: spec.clone(),
            machine,
            logs: logs.clone(),
            current: None,
            exited_tree: None,
            state_dir: setup.state_dir.clone(),
            notify_alternate,
            notify: None,
            timer: None,
            killed: false,
            since: None,
            pumps: Vec::new(),
            status: status_tx,
            notices: setup.notices,
            reports: setup.reports,
            tree: Arc::default(),
            listeners: setup.listeners,
        };
        let tree = task.tree.clone();
        let task = tokio::spawn(Box::new(task).run(rx));
        ProgramHandle { spec, generation, logs, commands, status, tree, task, notify_alternate }
    }

    /// Which task this is: unique for the life of steward.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `notice` comes from this task (and not from one a reload replaced).
    pub fn is(&self, notice: &Notice) -> bool {
        notice.generation == self.generation
    }

    /// A receiver that sees every status change from now on.
    pub fn watch(&self) -> StatusWatch {
        self.status.clone()
    }

    /// A reader of the program's stdout (or stderr) log, to be used off the supervisor's
    /// thread.
    pub fn log_reader(&self, stderr: bool) -> LogReader {
        LogReader { logs: self.logs.clone(), stream: usize::from(stderr) }
    }

    /// Send a command (Start, Stop, Restart). Ignored if the task has ended.
    pub fn send(&self, event: Event) {
        self.commands.send(event);
    }

    /// The tree of the process running now, if any.
    pub fn tree(&self) -> Option<process::TreeRef> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn status(&self) -> Status {
        self.status.get()
    }

    /// How often each log file (stdout, stderr) could not be opened, since this task started.
    pub fn log_open_failures(&self) -> [u64; 2] {
        self.logs.streams.each_ref().map(|s| s.open_failures.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Close the command channel and wait for the task to end: it stops its process first
    /// if one still runs, then waits for the log pumps to drain.
    pub async fn finish(self) {
        drop(self.commands);
        let _ = self.task.await;
    }
}

/// The two log files of a program, shared by its task (which writes) and its handle (which
/// serves `steward logs`). They outlive each process, so rotation state carries over
/// restarts, and two runs never tear each other's lines.
struct ProgramLogs {
    /// `[supervisor] log_dir`, shared by every program.
    dir: Arc<std::path::Path>,
    /// The program's spec, for the files' names and its `[log]` settings: the paths are
    /// made when needed rather than kept (two `PathBuf`s a program).
    spec: Arc<ProgramSpec>,
    streams: [LogStream; 2],
}

/// The log of one stream; index 0 is stdout, 1 stderr.
struct LogStream {
    /// Opened at the stream's first output, so a program (or stream) that never writes
    /// leaves no file.
    file: std::sync::Mutex<Option<SharedLog>>,
    /// Live copies of what gets written, for `steward logs -f`. Made by the first follower:
    /// a channel holds its 256 slots from the start, ~16 KiB, which 500 programs nobody
    /// follows should not pay (docs/benchmarks.md).
    feed: std::sync::OnceLock<broadcast::Sender<bytes::Bytes>>,
    /// Runs whose output on this stream was discarded because the file could not be opened.
    open_failures: std::sync::atomic::AtomicU64,
    /// For the sinks that ship this file (`None` unless one does).
    watch: Option<Arc<logs::FileWatch>>,
}

impl ProgramLogs {
    fn new(log_dir: &Arc<std::path::Path>, spec: &Arc<ProgramSpec>, watches: &logs::Watches) -> Self {
        let stream = |stream: usize| LogStream {
            watch: watches.as_ref().and_then(|find| find(spec, &path_of(log_dir, spec, stream))),
            file: std::sync::Mutex::new(None),
            feed: std::sync::OnceLock::new(),
            open_failures: std::sync::atomic::AtomicU64::new(0),
        };
        ProgramLogs { dir: log_dir.clone(), spec: spec.clone(), streams: [stream(0), stream(1)] }
    }

    /// Stream `stream`'s log file: `<log_dir>/<program>.out.log` or `.err.log`.
    fn path(&self, stream: usize) -> std::path::PathBuf {
        path_of(&self.dir, &self.spec, stream)
    }

    fn open(&self, stream: usize) -> std::io::Result<SharedLog> {
        let log = &self.streams[stream];
        let mut slot = log.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = &*slot {
            return Ok(shared.clone());
        }
        let mut file =
            logs::LogFile::open_watched(self.path(stream), self.spec.log.clone(), log.watch.clone())?;
        if let Some(feed) = log.feed.get() {
            file.set_feed(feed.clone());
        }
        let shared = file.shared();
        *slot = Some(shared.clone());
        Ok(shared)
    }

    /// The tail and the subscription. Under the file's lock only the live file is opened
    /// (and the feed subscribed): the tail is read from that open file afterwards, up to
    /// the length it had then, so no write falls in between and none is held up by the
    /// read.
    fn access(&self, stream: usize, lines: usize, follow: bool) -> std::io::Result<LogAccess> {
        let (log, path) = (&self.streams[stream], self.path(stream));
        // Listed before the lock; used only if no writer has the file open (then nothing
        // rotates it in the meantime).
        let listed = if log.file.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            match logs::history::files_oldest_first(&path) {
                Ok(files) => files.into_iter().rev().filter(|f| *f != path).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        let (source, feed) = {
            let slot = log.file.lock().unwrap_or_else(|e| e.into_inner());
            // With a writer, wait for its file (a rotation may be running on another thread)
            // without holding the slot, which a pump's first output needs. Without one, keep
            // the slot locked, so that none appears meanwhile.
            let (_no_writer, mut writes_paused) = match slot.clone() {
                Some(log) => {
                    drop(slot);
                    (None, Some(log.blocking_lock_owned()))
                }
                None => (Some(slot), None),
            };
            let live = match std::fs::File::open(&path) {
                Ok(file) => Some(logs::tail::Part::new(file)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            let rotated = match writes_paused.as_ref() {
                Some(file) => file.rotated_newest_first(),
                None => listed,
            };
            let feed = follow.then(|| {
                let feed = log.feed.get_or_init(|| broadcast::channel(256).0);
                if let Some(file) = writes_paused.as_mut() {
                    file.set_feed(feed.clone());
                }
                feed.subscribe()
            });
            (logs::tail::Source { live, rotated }, feed)
        };
        let tail = logs::tail::tail_of(source, lines, logs::tail::REPLY_LIMIT)?;
        let feeds = feed.into_iter().map(|rx| super::control::Feed { prefix: None, rx }).collect();
        Ok(LogAccess { tail, feeds })
    }
}

fn path_of(dir: &std::path::Path, spec: &ProgramSpec, stream: usize) -> std::path::PathBuf {
    let suffix = if stream == 0 { "out" } else { "err" };
    dir.join(format!("{}.{suffix}.log", spec.file_stem()))
}

/// A handle on one of a program's logs that reads it off the supervisor's thread (see
/// [`LogReader::access`]).
pub struct LogReader {
    logs: Arc<ProgramLogs>,
    stream: usize,
}

impl LogReader {
    /// The last `lines` lines of the log and, when `follow`, a live feed of the lines
    /// written after them. The files are read on a blocking thread, a few tails at a time
    /// ([`logs::tail::run`]).
    pub async fn access(self, lines: usize, follow: bool) -> std::io::Result<LogAccess> {
        logs::tail::run(move || self.logs.access(self.stream, lines, follow)).await
    }
}

struct ProgramTask {
    name: Arc<str>,
    generation: u64,
    spec: Arc<ProgramSpec>,
    machine: Machine,
    logs: Arc<ProgramLogs>,
    /// The running process.
    current: Option<process::Spawned>,
    /// The tree of a process that just exited, kept until the step that handles the exit
    /// has swept it (`Action::KillTree`).
    exited_tree: Option<ProcessTree>,
    /// Where the notify socket of a `ready = "notify"` program goes (`<state_dir>/notify`).
    state_dir: Arc<std::path::Path>,
    /// Its notify socket has the alternate name (see [`ProgramTask::notify_name`]).
    notify_alternate: bool,
    /// That socket, bound afresh before each spawn and dropped when the process exits.
    /// Boxed: most programs have none.
    notify: Option<Box<NotifySocket>>,
    /// The one timer (backoff or stop timeout), as a tokio instant so tests can pause time.
    timer: Option<tokio::time::Instant>,
    /// The stop timeout ran out and the tree was killed; told with the next state change.
    killed: bool,
    since: Option<SystemTime>,
    /// Log pumps of this and earlier processes; awaited when the task ends so that no
    /// output is lost at shutdown.
    pumps: Vec<Pump>,
    status: StatusSender,
    notices: mpsc::UnboundedSender<Notice>,
    /// Where the log pumps report a log file that cannot be opened, to be published.
    reports: mpsc::UnboundedSender<Published>,
    /// Shared with the handle: set while a process runs.
    tree: Arc<std::sync::Mutex<Option<process::TreeRef>>>,
    /// The program's listening sockets, passed to each process; held until the task ends,
    /// so a socket a reload replaced stays open while this task's process drains.
    listeners: Listeners,
}

impl ProgramTask {
    /// Boxed: an async fn keeps its by-value arguments in its state beside the locals they
    /// move into, so a `ProgramTask` taken by value made every program's task 2.1 KB instead
    /// of 0.8 KB (measured with size_of_val).
    async fn run(mut self: Box<Self>, mut commands: commands::Receiver) {
        let mut open = true;
        loop {
            let event = tokio::select! {
                (i, first) = first_output(&mut self.pumps), if self.pumps.iter().any(Pump::is_silent) => {
                    self.start_pump(i, first);
                    continue;
                }
                cmd = commands.recv(), if open => match cmd {
                    Some(event) => event,
                    // The supervisor let go of us: stop whatever runs, then end.
                    None => { open = false; Event::Stop }
                },
                status = wait(&mut self.current) => {
                    self.exited_tree = self.current.take().map(|p| p.tree);
                    *self.tree.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    self.notify = None;
                    Event::Exited(status)
                }
                () = notify_socket::ready(self.notify.as_deref(), &self.name) => Event::Ready,
                () = sleep_until(self.timer) => {
                    self.timer = None;
                    Event::TimerFired
                }
            };
            // Boxed: the future of a step that spawns is large and lives only while it runs;
            // inline it would make every program's task bigger for all of its life.
            Box::pin(self.handle(event)).await;
            if !open && self.machine.state().is_down() {
                break;
            }
        }
        // The tree has been swept. The pumps drain what is left in the pipes; a process that
        // escaped the sweep (outside any cgroup, in a process group of its own) may still hold
        // them open, and must not hold the shutdown too. Boxed, as the step above: the
        // timeout's state is large and lives only at the task's end.
        let pumps = std::mem::take(&mut self.pumps)
            .into_iter()
            .map(|pump| match pump {
                Pump::Silent(reader, stream) => tokio::spawn(pump_silent(reader, self.pump_context(stream))),
                Pump::Running(handle) => handle,
            })
            .collect();
        if Box::pin(tokio::time::timeout(PUMP_GRACE, drain(pumps))).await.is_err() {
            tracing::warn!(program = %self.name, event = "output-held",
                "a process outside the program's tree still holds its output open; no longer reading it");
        }
        let tree_name = self.tree_name();
        process::contain::forget(&self.state_dir, &tree_name);
        process::contain::remove_program(&tree_name);
    }

    /// Names this task's process trees in the state dir's records and its cgroup:
    /// `<program>.<generation>`, so a reload's new task never shares them with the old one.
    /// Made when needed rather than kept: it is needed once a run.
    fn tree_name(&self) -> String {
        format!("{}.{}", self.spec.file_stem(), self.generation)
    }

    /// Its notify socket's file name: `<program>.sock`, or `<program>+.sock` beside another
    /// task (a rolling restart's, which runs at the same time).
    fn notify_name(&self) -> String {
        let stem = self.spec.file_stem();
        if self.notify_alternate {
            format!("{stem}+")
        } else {
            stem
        }
    }

    /// Feed an event and everything it causes (a spawn answers with Spawned or SpawnFailed).
    async fn handle(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = tokio::time::Instant::now();
            if self.machine.state() == State::Stopping && matches!(event, Event::TimerFired) {
                self.killed = true;
                tracing::warn!(program = %self.name, event = "stop-timeout",
                    "did not stop within stop_timeout ({:?}); killing its process tree", self.spec.stop_timeout);
            }
            let step = self.machine.handle(event, now.into_std());
            for action in step.actions {
                // A spawn waits for its turn, then for the child's exec, on a thread kept for
                // that (`process`). Its state is made (boxed) once it has its turn.
                let next = match action {
                    Action::Spawn => {
                        let turn = process::turn().await;
                        Some(Box::pin(self.spawn(turn)).await)
                    }
                    action => self.act(action, now),
                };
                if let Some(next) = next {
                    queue.push_back(next);
                }
            }
            self.exited_tree = None;
            if let Some(change) = step.change {
                if change.to != State::Running && change.to != State::Starting {
                    self.since = None;
                }
                let status = Status::of(&self.machine, self.since);
                self.status.send_replace(status.clone());
                let _ = self.notices.send(Notice {
                    program: self.name.clone(),
                    generation: self.generation,
                    change,
                    status,
                    killed: std::mem::take(&mut self.killed),
                });
            }
        }
    }

    fn act(&mut self, action: Action, now: tokio::time::Instant) -> Option<Event> {
        match action {
            // `handle` spawns: it awaits.
            Action::Spawn => None,
            Action::Signal(signal) => {
                if let Some(p) = &self.current {
                    if let Err(e) = p.tree.signal(signal) {
                        tracing::warn!(program = %self.name, event = "signal-failed", "could not send {}: {e}", signal.name());
                    }
                }
                None
            }
            Action::KillTree => {
                let tree = self.current.as_ref().map(|p| &p.tree).or(self.exited_tree.as_ref());
                if let Some(tree) = tree {
                    if let Err(e) = tree.kill() {
                        tracing::warn!(program = %self.name, event = "kill-failed", "could not kill the process tree: {e}");
                    }
                }
                None
            }
            Action::ArmTimer(at) => {
                let std_now = now.into_std();
                self.timer = Some(now + at.saturating_duration_since(std_now));
                None
            }
            Action::DisarmTimer => {
                self.timer = None;
                None
            }
        }
    }

    /// `first_output` found the first output (or the end) of the silent stream `self.pumps[i]`.
    fn start_pump(&mut self, i: usize, first: std::io::Result<Option<u8>>) {
        let Pump::Silent(reader, stream) = self.pumps.swap_remove(i) else { return };
        match first {
            Ok(Some(byte)) => {
                let cx = self.pump_context(stream);
                self.pumps.push(Pump::Running(tokio::spawn(pump_from(byte, reader, cx))));
            }
            Ok(None) => {}
            Err(e) => capture_failed(&self.name, &e),
        }
    }

    fn pump_context(&self, stream: Stream) -> Box<PumpContext> {
        Box::new(PumpContext {
            logs: self.logs.clone(),
            stream,
            program: self.name.clone(),
            reports: self.reports.clone(),
        })
    }

    async fn spawn(&mut self, turn: process::Turn) -> Event {
        self.notify = None;
        if self.spec.ready == Readiness::Notify {
            match NotifySocket::bind(&self.state_dir, &self.notify_name()) {
                Ok(socket) => self.notify = Some(Box::new(socket)),
                Err(e) => return Event::SpawnFailed { reason: e.to_string() },
            }
        }
        let mut env = notify_socket::child_env(self.notify.as_deref());
        env.extend(sockets::child_env(&self.listeners));
        let listen: Vec<&socket2::Socket> = self.listeners.iter().map(|l| l.socket()).collect();
        let tree_name = self.tree_name();
        match process::spawn(&self.spec, &env, &tree_name, &listen, turn).await {
            Ok(mut p) => {
                let pid = p.child.id();
                if let Some(socket) = &mut self.notify {
                    socket.set_main_pid(pid);
                    tracing::info!(program = %self.name, event = "spawned", pid,
                        "started (pid {pid}); waiting for READY=1 on its NOTIFY_SOCKET");
                }
                // Watched by this task until their first output (`first_output`); each log
                // file is opened then.
                self.pumps.retain(|pump| !matches!(pump, Pump::Running(h) if h.is_finished()));
                if let Some(stdout) = p.child.stdout.take() {
                    self.pumps.push(Pump::Silent(stdout, Stream::Stdout));
                }
                if let Some(stderr) = p.child.stderr.take() {
                    self.pumps.push(Pump::Silent(stderr, Stream::Stderr));
                }
                if let Err(e) = p.record(&self.state_dir, &tree_name, &self.spec.name) {
                    tracing::warn!(program = %self.name, event = "record-failed",
                        "cannot record the process tree in {} for a later sweep: {e}", self.state_dir.display());
                }
                *self.tree.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.tree.reference());
                self.current = Some(p);
                self.since = Some(SystemTime::now());
                Event::Spawned { pid }
            }
            Err(e) => {
                self.notify = None;
                Event::SpawnFailed { reason: spawn_error(&self.spec, &e) }
            }
        }
    }
}

/// How long the log pumps of a stopped program may take to drain its pipes: the pipes hold
/// at most a few MiB, which take milliseconds to write out.
const PUMP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Wait for every pump. Pumps still running when this is dropped (the grace ran out) are
/// aborted, which closes steward's end of their pipes.
async fn drain(pumps: Vec<JoinHandle<()>>) {
    struct AbortOnDrop(JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut pumps: Vec<AbortOnDrop> = pumps.into_iter().map(AbortOnDrop).collect();
    for pump in &mut pumps {
        let _ = (&mut pump.0).await;
    }
}

/// What a log pump needs besides its pipe.
struct PumpContext {
    logs: Arc<ProgramLogs>,
    stream: Stream,
    program: Arc<str>,
    reports: mpsc::UnboundedSender<Published>,
}

/// A stream of a program's process, and what reads it into its log.
///
/// Most streams stay silent for long or for ever. Until its first output a stream is only
/// watched, by the program's task (`first_output`): a pump task of its own, a 256-byte task
/// (more with its context) for every stream of every program, is made when output comes.
enum Pump {
    Silent(process::Output, Stream),
    Running(JoinHandle<()>),
}

impl Pump {
    fn is_silent(&self) -> bool {
        matches!(self, Pump::Silent(..))
    }
}

/// The first silent stream in `pumps` to turn readable: its index, and its first byte, or
/// `None` at its end (a process that exited without a word).
fn first_output(
    pumps: &mut [Pump],
) -> impl std::future::Future<Output = (usize, std::io::Result<Option<u8>>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (i, pump) in pumps.iter_mut().enumerate() {
            let Pump::Silent(reader, _) = pump else { continue };
            let mut byte = [0u8; 1];
            let mut buf = tokio::io::ReadBuf::new(&mut byte);
            if let std::task::Poll::Ready(read) =
                tokio::io::AsyncRead::poll_read(std::pin::Pin::new(reader), cx, &mut buf)
            {
                return std::task::Poll::Ready((i, read.map(|()| buf.filled().first().copied())));
            }
        }
        std::task::Poll::Pending
    })
}

/// A stream's pump, from its first byte on.
async fn pump_from(first: u8, reader: process::Output, mut cx: Box<PumpContext>) {
    if let Err(e) = logs::pump_from(first, reader, &mut *cx).await {
        capture_failed(&cx.program, &e);
    }
}

/// A silent stream's pump, when the task ends: it reads what may still come, to the end.
async fn pump_silent(reader: process::Output, mut cx: Box<PumpContext>) {
    if let Err(e) = logs::pump_to(reader, &mut *cx).await {
        capture_failed(&cx.program, &e);
    }
}

fn capture_failed(program: &str, e: &std::io::Error) {
    tracing::warn!(program = %program, event = "log-capture-failed", "reading the program's output failed: {e}");
}

impl logs::Destination for PumpContext {
    /// Opens the stream's log file. A failure is never silent: it is logged, published as
    /// an event and counted (`steward_log_open_failures_total`); the pump then discards this
    /// run's output on the stream, and the next run tries again.
    fn open(&mut self) -> std::io::Result<SharedLog> {
        let index = match self.stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        };
        self.logs.open(index).inspect_err(|e| {
            self.logs.streams[index].open_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let stream = self.stream.name();
            let message = format!("{}; this run's {stream} is discarded", error_chain(e));
            tracing::error!(program = %self.program, event = "log-open-failed", stream,
                file = %self.logs.path(index).display(), "{message}");
            let kind = EventKind::LogOpenFailed { stream: self.stream, message };
            let _ = self.reports.send(Published::now(self.program.clone(), kind));
        })
    }

    fn mirror(&self) -> Option<logs::mirror::Tee> {
        logs::mirror::tee(self.program.clone(), self.stream.name())
    }
}

/// `e` and its causes, `: `-separated (an `io::Error` shows only its own message).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// A spawn error in words a user can act on.
fn spawn_error(spec: &ProgramSpec, e: &std::io::Error) -> String {
    let program = &spec.command[0];
    match e.kind() {
        std::io::ErrorKind::NotFound if !spec.cwd.is_dir() => {
            format!("working directory {} does not exist ({e})", spec.cwd.display())
        }
        std::io::ErrorKind::NotFound => {
            format!("`{program}` was not found ({e}); check the path, or PATH if it has no slash")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("`{program}` is not executable by this user ({e}); check its permissions")
        }
        _ => format!("`{program}`: {e}"),
    }
}

/// The child's exit, or never when there is no child.
async fn wait(current: &mut Option<process::Spawned>) -> ExitStatus {
    match current {
        Some(p) => match p.child.wait().await {
            Ok(status) => process::exit_status(status),
            Err(e) => {
                tracing::error!(event = "wait-failed", "waiting for a child failed: {e}");
                ExitStatus::Code(-1)
            }
        },
        None => std::future::pending().await,
    }
}

/// The timer. tokio's timer counts whole milliseconds and rounds a deadline up to the next
/// tick, so a deadline that is already due (a `restart_delay` of 0) would still wait 1 to
/// 2 ms; that was most of the restart gap (docs/benchmarks.md). A due deadline fires after
/// one yield instead: the yield lets the other tasks and the I/O driver run first, so a
/// program that fails to spawn with no delay cannot starve the runtime.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) if at <= tokio::time::Instant::now() => tokio::task::yield_now().await,
        // Boxed: a timer is armed only in backoff or while stopping, and inline every
        // program's task would be sized for it all its life.
        Some(at) => Box::pin(tokio::time::sleep_until(at)).await,
        None => std::future::pending().await,
    }
}

/// Used by tests and status output: how a state change reads in the log.
pub fn describe(change: &Change) -> String {
    format!("{} -> {}: {}", change.from, change.to, change.reason)
}
