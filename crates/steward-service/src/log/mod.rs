//! The service's own log, where its manager looks for it: a [`tracing`] subscriber (or a
//! layer for one the program builds itself) whose destination is chosen from how the program
//! was started.
//!
//! | started by | where the log goes |
//! |---|---|
//! | the Windows SCM | the Event Log (source: the service's name), and the file if one is set |
//! | systemd, stderr still the journal's stream | journald, with the event's fields as journal fields |
//! | anything else | the file if one is set (a new one each day, the last [`LogOptions::keep`] kept), else stderr |
//!
//! The Event Log needs no message DLL: the source is registered with .NET's
//! `EventLogMessages.dll`, whose text for every id is the entry's own string (what .NET's
//! `EventLog.CreateEventSource` does). An entry's id is the event's `event_id` field if it
//! has one, else [`DEFAULT_EVENT_ID`]; ERROR is an error entry, WARN a warning, INFO
//! information, and DEBUG and TRACE never reach the Event Log.
//!
//! [`init`] also logs a panic (its message and where) before the final status report, which
//! under a service manager is the only place a panic's message can be read.

#[cfg(windows)]
mod eventlog;
#[cfg(windows)]
pub use eventlog::EventLog;
#[cfg(unix)]
mod journald;

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry};

use crate::Mode;

/// The Event Log id of an entry whose event has no `event_id` field.
pub const DEFAULT_EVENT_ID: u32 = 1000;

/// Where the log goes, besides what the manager decides (see the module's table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    dir: Option<PathBuf>,
    keep: usize,
    filter: String,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions { dir: None, keep: 7, filter: "info".into() }
    }
}

impl LogOptions {
    /// Log to stderr, the journal or the Event Log only; level INFO and up.
    pub fn new() -> LogOptions {
        LogOptions::default()
    }

    /// Also write `DIR/NAME.YYYY-MM-DD.log`, a new file each day. A Windows service has no
    /// console, so this is where its DEBUG lines and full detail go.
    pub fn file_in(mut self, dir: impl Into<PathBuf>) -> LogOptions {
        self.dir = Some(dir.into());
        self
    }

    /// How many daily files to keep (default 7); older ones are deleted.
    pub fn keep(mut self, files: usize) -> LogOptions {
        self.keep = files.max(1);
        self
    }

    /// Which events to log, as an `EnvFilter` directive (default `info`). `RUST_LOG`, when
    /// set, wins.
    pub fn filter(mut self, directive: impl Into<String>) -> LogOptions {
        self.filter = directive.into();
        self
    }
}

/// One place the log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The Windows Event Log, as the service's source.
    EventLog,
    /// The systemd journal, with fields.
    Journald,
    /// The folder of the daily files.
    Files(PathBuf),
    /// Standard error.
    Stderr,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::EventLog => f.write_str("the Windows Event Log"),
            Destination::Journald => f.write_str("the systemd journal"),
            Destination::Files(dir) => write!(f, "daily files in {}", dir.display()),
            Destination::Stderr => f.write_str("stderr"),
        }
    }
}

/// Where the log goes for a program started by `mode`; `journal` says whether stderr is
/// still the stream systemd connected to the journal.
pub fn destinations(mode: Mode, journal: bool, dir: Option<&Path>) -> Vec<Destination> {
    let files = dir.map(|d| Destination::Files(d.to_path_buf()));
    match mode {
        Mode::Scm => std::iter::once(Destination::EventLog).chain(files).collect(),
        Mode::Systemd if journal => vec![Destination::Journald],
        _ => vec![files.unwrap_or(Destination::Stderr)],
    }
}

/// Why the log cannot be set up.
#[derive(Debug)]
pub enum LogError {
    /// The folder for the files cannot be created or written.
    Files {
        /// The folder.
        dir: PathBuf,
        /// Why.
        error: String,
    },
    /// The Event Log source cannot be opened.
    EventLog(std::io::Error),
    /// The filter directive does not parse.
    Filter {
        /// The directive.
        directive: String,
        /// What the parser said.
        error: String,
    },
    /// The program already set a global subscriber.
    AlreadySet,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Files { dir, error } => {
                write!(f, "cannot write log files in {}: {error}; check that the folder exists and the service's account may write it", dir.display())
            }
            LogError::EventLog(e) => write!(f, "cannot open the Event Log: {e}"),
            LogError::Filter { directive, error } => write!(f, "invalid log filter {directive:?}: {error}"),
            LogError::AlreadySet => f.write_str("a global tracing subscriber is already set"),
        }
    }
}

impl std::error::Error for LogError {}

/// A boxed layer over the plain registry.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The layers for a service named `name` started by `mode`, and where they write; for a
/// program that builds its own subscriber. [`init`] is the short way.
pub fn layers(
    name: &str,
    mode: Mode,
    options: &LogOptions,
) -> Result<(Vec<BoxedLayer>, Vec<Destination>), LogError> {
    let chosen = destinations(mode, journal_is_stderr(), options.dir.as_deref());
    let mut layers: Vec<BoxedLayer> = Vec::new();
    for destination in &chosen {
        layers.push(match destination {
            Destination::EventLog => event_log_layer(name)?,
            Destination::Journald => journald_layer(name)?,
            Destination::Files(dir) => {
                let appender = tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix(name)
                    .filename_suffix("log")
                    .max_log_files(options.keep)
                    .build(dir)
                    .map_err(|e| LogError::Files { dir: dir.clone(), error: e.to_string() })?;
                Box::new(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(appender))
            }
            Destination::Stderr => Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
        });
    }
    Ok((layers, chosen))
}

/// Set the global subscriber for a service named `name` started by `mode` (the
/// [`Context`](crate::Context)'s), with the options' filter, and log panics through it.
/// Returns where the log goes.
pub fn init(name: &str, mode: Mode, options: &LogOptions) -> Result<Vec<Destination>, LogError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => parse_filter(&directive)?,
        _ => parse_filter(&options.filter)?,
    };
    let (layers, chosen) = layers(name, mode, options)?;
    let subscriber = Registry::default().with(layers).with(filter);
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadySet)?;
    log_panics();
    Ok(chosen)
}

fn parse_filter(directive: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(directive)
        .map_err(|e| LogError::Filter { directive: directive.to_owned(), error: e.to_string() })
}

/// A panic's message and place go to the log first; the previous hook (stderr) still runs.
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(panic.location = %place, "panicked: {message}");
        previous(info);
    }));
}

#[cfg(unix)]
fn journal_is_stderr() -> bool {
    journald::stderr_is_journal()
}

#[cfg(not(unix))]
fn journal_is_stderr() -> bool {
    false
}

/// The journald layer, with `identifier` as `SYSLOG_IDENTIFIER`, when stderr is the stream
/// systemd connected to the journal and the journal's socket answers; for a program that
/// builds its own subscriber.
#[cfg(unix)]
pub fn journald(identifier: &str) -> Option<tracing_journald::Layer> {
    journald::stderr_is_journal().then(|| journald::layer(identifier)).flatten()
}

#[cfg(unix)]
fn journald_layer(name: &str) -> Result<BoxedLayer, LogError> {
    // Chosen only when stderr is the journal's stream, so stderr is the fallback that still
    // reaches the journal if its socket does not answer.
    Ok(match journald::layer(name) {
        Some(layer) => Box::new(layer),
        None => Box::new(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::io::stderr)),
    })
}

#[cfg(not(unix))]
fn journald_layer(_name: &str) -> Result<BoxedLayer, LogError> {
    Ok(Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)))
}

#[cfg(windows)]
fn event_log_layer(name: &str) -> Result<BoxedLayer, LogError> {
    let log = eventlog::EventLog::open(name).map_err(LogError::EventLog)?;
    Ok(Box::new(EntryLayer { sink: log }))
}

#[cfg(not(windows))]
fn event_log_layer(_name: &str) -> Result<BoxedLayer, LogError> {
    Err(LogError::EventLog(std::io::Error::new(std::io::ErrorKind::Unsupported, "only Windows has one")))
}

/// How bad an Event Log entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// An information entry (INFO).
    Information,
    /// A warning entry (WARN).
    Warning,
    /// An error entry (ERROR).
    Error,
}

/// One Event Log entry, decided from a tracing event without calling Windows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// How bad it is.
    pub severity: Severity,
    /// The event id: the event's `event_id` field, or [`DEFAULT_EVENT_ID`].
    pub id: u32,
    /// The message, then the other fields as `key=value`.
    pub text: String,
}

/// Where entries go: the Event Log, or a test's list.
#[cfg_attr(not(windows), allow(dead_code))] // the Event Log is Windows'; tested everywhere
pub(crate) trait EntrySink: Send + Sync + 'static {
    fn write(&self, entry: &Entry);
}

/// The layer that turns events into [`Entry`]s.
#[cfg_attr(not(windows), allow(dead_code))] // the Event Log is Windows'; tested everywhere
pub(crate) struct EntryLayer<W> {
    pub(crate) sink: W,
}

impl<S, W> Layer<S> for EntryLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: EntrySink,
{
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        if let Some(entry) = entry(event) {
            self.sink.write(&entry);
        }
    }
}

/// The entry for `event`; `None` below INFO.
#[cfg_attr(not(windows), allow(dead_code))] // the Event Log is Windows'; tested everywhere
pub(crate) fn entry(event: &Event<'_>) -> Option<Entry> {
    let severity = match *event.metadata().level() {
        Level::ERROR => Severity::Error,
        Level::WARN => Severity::Warning,
        Level::INFO => Severity::Information,
        _ => return None,
    };
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut text = fields.message;
    if !fields.rest.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&fields.rest);
    }
    Some(Entry { severity, id: fields.id.unwrap_or(DEFAULT_EVENT_ID), text })
}

#[derive(Default)]
#[cfg_attr(not(windows), allow(dead_code))]
struct Fields {
    message: String,
    rest: String,
    id: Option<u32>,
}

impl Fields {
    #[cfg_attr(not(windows), allow(dead_code))]
    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if !self.rest.is_empty() {
            self.rest.push(' ');
        }
        let _ = write!(self.rest, "{}={value}", field.name());
    }
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        // Event ids are 16 bits wide in the viewer; a larger one is kept as a field.
        match (field.name(), u16::try_from(value)) {
            ("event_id", Ok(id)) => self.id = Some(u32::from(id)),
            _ => self.push(field, format_args!("{value}")),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match (field.name(), u16::try_from(value)) {
            ("event_id", Ok(id)) => self.id = Some(u32::from(id)),
            _ => self.push(field, format_args!("{value}")),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.push(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.push(field, format_args!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn each_manager_gets_its_own_place() {
        let dir = Path::new("/var/log/myapp");
        let files = Destination::Files(dir.to_path_buf());
        assert_eq!(destinations(Mode::Scm, false, None), [Destination::EventLog]);
        assert_eq!(destinations(Mode::Scm, false, Some(dir)), [Destination::EventLog, files.clone()]);
        assert_eq!(destinations(Mode::Systemd, true, Some(dir)), [Destination::Journald]);
        assert_eq!(destinations(Mode::Systemd, false, None), [Destination::Stderr], "stderr redirected");
        assert_eq!(destinations(Mode::Console, false, Some(dir)), [files]);
        assert_eq!(destinations(Mode::Launchd, false, None), [Destination::Stderr]);
    }

    #[derive(Clone, Default)]
    struct Entries(Arc<Mutex<Vec<Entry>>>);

    impl EntrySink for Entries {
        fn write(&self, entry: &Entry) {
            self.0.lock().unwrap().push(entry.clone());
        }
    }

    #[test]
    fn events_become_entries_with_severity_id_and_fields() {
        let entries = Entries::default();
        let subscriber = Registry::default().with(EntryLayer { sink: entries.clone() });
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(port = 8080, "cannot listen");
            tracing::warn!(event_id = 42u64, "slow start");
            tracing::info!(user = "ann", "started");
            tracing::debug!("not for the Event Log");
            tracing::info!(event_id = 70000u64, "too wide an id stays a field");
        });
        let got = entries.0.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                Entry {
                    severity: Severity::Error,
                    id: DEFAULT_EVENT_ID,
                    text: "cannot listen port=8080".into()
                },
                Entry { severity: Severity::Warning, id: 42, text: "slow start".into() },
                Entry {
                    severity: Severity::Information,
                    id: DEFAULT_EVENT_ID,
                    text: "started user=\"ann\"".into()
                },
                Entry {
                    severity: Severity::Information,
                    id: DEFAULT_EVENT_ID,
                    text: "too wide an id stays a field event_id=70000".into()
                },
            ]
        );
    }

    #[test]
    fn daily_files_are_written_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions::new().file_in(dir.path());
        let (layers, chosen) = layers("myapp", Mode::Console, &options).unwrap();
        assert_eq!(chosen, [Destination::Files(dir.path().to_path_buf())]);
        tracing::subscriber::with_default(Registry::default().with(layers), || {
            tracing::info!(port = 8080, "listening");
        });
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("myapp.") && name.ends_with(".log"), "{name}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("listening port=8080"), "{text}");
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_a_clear_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let under_a_file = file.path().join("logs");
        let Err(e) = layers("myapp", Mode::Console, &LogOptions::new().file_in(&under_a_file)) else {
            panic!("a folder under a file cannot be created");
        };
        let text = e.to_string();
        assert!(text.contains(&under_a_file.display().to_string()) && text.contains("may write"), "{text}");
    }

    #[test]
    fn a_bad_filter_is_named() {
        let e = parse_filter("info,[[[").unwrap_err();
        assert!(e.to_string().contains("info,[[["), "{e}");
    }
}
