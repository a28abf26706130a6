//! `steward top`: a live full-screen view of the programs, in the terminal (over SSH too).
//!
//! Three parts: [`model`] holds the state and turns events into commands (pure, unit
//! tested), [`view`] draws it, and this module is the I/O around them. It waits and never
//! polls the API: three streams feed it, each on its own task sending [`Event`]s down one
//! channel, and the loop waits on that channel, the terminal's keys and resizes, and a
//! one-second tick that moves the uptimes on.
//!
//! - `GET /v1/events?follow=true`: each event makes the status stale; the model asks for
//!   `GET /v1/status` again, one request for a burst of events.
//! - `GET /v1/usage?follow=true`: memory and CPU (a 404 from an older steward shows "–").
//! - `GET /v1/logs/NAME?follow=true` while the log pane is open.
//!
//! The terminal is restored (raw mode off, the main screen back, the cursor shown) by
//! [`Screen`]'s `Drop` on every way out, and by a panic hook (the release build aborts on a
//! panic, and runs no `Drop`).

mod model;
mod view;

use std::io::{IsTerminal as _, Stdout};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use futures_util::StreamExt as _;
use http_body_util::BodyExt as _;
use hyper::{Method, StatusCode};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::model::{Command, Event, Key, Model, UsageLine};
use super::client::{ApiFailed, Client};
use super::Cli;
use crate::protocol::{ActionReply, ActionRequest, StatusReply};

#[derive(Debug, clap::Args)]
pub struct TopArgs {}

pub fn top(cli: &Cli, _args: &TopArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "steward top draws on a terminal, and its output is not one; for a listing a file or \
             a pipe can take, use `steward status` (or `steward status --json`)"
        );
    }
    let client = Arc::new(Client::locate(cli)?);
    let target = match &cli.remote {
        Some(url) => url.clone(),
        None => cli.config.display().to_string(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(client, target))
}

async fn run(client: Arc<Client>, target: String) -> anyhow::Result<ExitCode> {
    // Read once before taking the screen: no steward there, or a refused token, is said on
    // the shell (with the usual exit codes), not drawn.
    let first: StatusReply = client.get("/v1/status").await?;
    let mut model = Model::new(target);
    model.update(Event::Status { reply: first, at: Instant::now() });

    let (tx, mut rx) = mpsc::unbounded_channel();
    let streams = [
        tokio::spawn(follow_events(client.clone(), tx.clone())),
        tokio::spawn(follow_usage(client.clone(), tx.clone())),
    ];
    let _abort = AbortOnDrop(streams.into_iter().collect());
    // The log pane's stream, while it is open.
    let mut log: Option<JoinHandle<()>> = None;

    let mut screen = Screen::enter()?;
    let size = screen.terminal.size()?;
    model.update(Event::Resize { width: size.width, height: size.height });
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut terminated = std::pin::pin!(terminated());
    loop {
        screen.terminal.draw(|frame| view::draw(frame, &model, Instant::now())).context("cannot draw")?;
        let first = tokio::select! {
            key = keys.next() => match key {
                Some(Ok(event)) => translate(event),
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("cannot read the terminal")),
                None => return Ok(ExitCode::SUCCESS),
            },
            Some(event) = rx.recv() => Some(event),
            _ = tick.tick() => None,
            () = &mut terminated => return Ok(ExitCode::SUCCESS),
        };
        // Everything that has arrived, then one draw.
        let mut events: Vec<Event> = first.into_iter().collect();
        while let Ok(event) = rx.try_recv() {
            events.push(event);
        }
        for event in events {
            for command in model.update(event) {
                match command {
                    Command::Quit => return Ok(ExitCode::SUCCESS),
                    Command::FetchStatus => {
                        tokio::spawn(fetch_status(client.clone(), tx.clone()));
                    }
                    Command::Action { verb, name } => {
                        let (client, tx) = (client.clone(), tx.clone());
                        tokio::spawn(async move {
                            let req = ActionRequest { names: vec![name.clone()], ..ActionRequest::default() };
                            let reply: anyhow::Result<ActionReply> =
                                client.post(&format!("/v1/{}", verb.name()), &req).await;
                            let result = reply.map(|r| r.results).map_err(|e| format!("{e:#}"));
                            let _ = tx.send(Event::ActionDone { verb, name, result });
                        });
                    }
                    Command::OpenLog { id, name, stderr, lines } => {
                        let follow = follow_log(client.clone(), tx.clone(), id, name, stderr, lines);
                        // A new pane ends the stream of the one before.
                        if let Some(old) = log.replace(tokio::spawn(follow)) {
                            old.abort();
                        }
                    }
                    Command::CloseLog => {
                        if let Some(old) = log.take() {
                            old.abort();
                        }
                    }
                }
            }
        }
    }
}

/// The terminal in raw mode on the alternate screen, given back as it was on drop.
struct Screen {
    /// Never dropped: ratatui's drop shows the cursor and, when it cannot (the terminal is
    /// gone), says so with `eprintln!`, which panics when stderr was that terminal too, and
    /// the release build aborts. `Screen`'s drop shows the cursor itself; `top` then ends.
    terminal: std::mem::ManuallyDrop<Terminal<CrosstermBackend<Stdout>>>,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        // From here on, any way out restores the terminal.
        let screen = |terminal| Screen { terminal: std::mem::ManuallyDrop::new(terminal) };
        crossterm::execute!(std::io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide)
            .map_err(|e| {
                restore();
                e
            })
            .context("cannot switch to the alternate screen")?;
        match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
            Ok(terminal) => {
                exit_on_hangup();
                Ok(screen(terminal))
            }
            Err(e) => {
                restore();
                Err(anyhow::Error::new(e).context("cannot use the terminal"))
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = self.terminal.show_cursor();
    }
}

/// Ends `top` with 1 when its terminal hangs up. A SIGHUP does that when the terminal is
/// `top`'s controlling one; when it is not, or the signal goes elsewhere, crossterm's reader
/// reads an endless end of file while holding the lock the event stream waits for, so `top`
/// would hang there (and keep its daemon's streams open) for good. A thread blocked in
/// `poll` for no event at all wakes only for a hangup or an error: no wakeups otherwise.
#[cfg(unix)]
fn exit_on_hangup() {
    let watch = || loop {
        let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: 0, revents: 0 };
        // SAFETY: one valid pollfd, for the length of the call.
        let n = unsafe { libc::poll(&mut fd, 1, -1) };
        if n > 0 && fd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            std::process::exit(1);
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return;
        }
    };
    let _ = std::thread::Builder::new().name("top-hangup".into()).stack_size(64 << 10).spawn(watch);
}

/// Windows: closing the console ends the process.
#[cfg(not(unix))]
fn exit_on_hangup() {}

/// Leaves raw mode and the alternate screen, and shows the cursor. Harmless when repeated.
fn restore() {
    let _ = disable_raw_mode();
    let _ = crossterm::execute!(std::io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Tasks aborted when this is dropped: the streams end with the view.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A terminal event as the model's; `None` for what it does not take (mouse, focus, key
/// releases on Windows).
fn translate(event: TermEvent) -> Option<Event> {
    match event {
        TermEvent::Resize(width, height) => Some(Event::Resize { width, height }),
        TermEvent::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press | KeyEventKind::Repeat,
            ..
        }) => {
            let key = match code {
                KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
                KeyCode::Char(c) if !modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                    Key::Char(c)
                }
                KeyCode::Up => Key::Up,
                KeyCode::Down => Key::Down,
                KeyCode::Home => Key::Home,
                KeyCode::End => Key::End,
                KeyCode::Enter => Key::Enter,
                KeyCode::Esc => Key::Esc,
                KeyCode::Backspace => Key::Backspace,
                _ => return None,
            };
            Some(Event::Key(key))
        }
        _ => None,
    }
}

/// SIGTERM or SIGHUP (the SSH session closed): leave as on `q`, restoring the terminal.
#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// Windows: closing the console ends the process; nothing to wait for.
#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

async fn fetch_status(client: Arc<Client>, tx: mpsc::UnboundedSender<Event>) {
    let event = match client.get::<StatusReply>("/v1/status").await {
        Ok(reply) => Event::Status { reply, at: Instant::now() },
        Err(e) => Event::StatusFailed(format!("{e:#}")),
    };
    let _ = tx.send(event);
}

async fn follow_events(client: Arc<Client>, tx: mpsc::UnboundedSender<Event>) {
    let ended = lines(&client, "/v1/events?follow=true", |_| tx.send(Event::Changed).is_ok()).await;
    let _ = tx.send(Event::EventsEnded(ended.err().map_or("steward closed it".into(), |e| format!("{e:#}"))));
}

async fn follow_usage(client: Arc<Client>, tx: mpsc::UnboundedSender<Event>) {
    let ended = lines(&client, "/v1/usage?follow=true", |line| {
        // A line this version does not know is skipped, not an error.
        match serde_json::from_slice::<UsageLine>(line) {
            Ok(usage) => tx.send(Event::Usage(usage)).is_ok(),
            Err(_) => true,
        }
    })
    .await;
    let event = match ended {
        Err(e) if e.downcast_ref::<ApiFailed>().is_some_and(|f| f.status == StatusCode::NOT_FOUND) => {
            Event::UsageUnavailable
        }
        Err(e) => Event::UsageEnded(format!("{e:#}")),
        Ok(()) => Event::UsageEnded("steward closed it".into()),
    };
    let _ = tx.send(event);
}

async fn follow_log(
    client: Arc<Client>,
    tx: mpsc::UnboundedSender<Event>,
    id: u64,
    name: String,
    stderr: bool,
    lines_wanted: usize,
) {
    let path = format!(
        "/v1/logs/{}?lines={lines_wanted}&follow=true&stderr={stderr}",
        super::logs::percent_encode(&name)
    );
    let ended = lines(&client, &path, |line| {
        let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_owned();
        tx.send(Event::LogLine { id, line: text }).is_ok()
    })
    .await;
    let _ = tx.send(Event::LogEnded { id, error: ended.err().map(|e| format!("{e:#}")) });
}

/// Reads the body of `GET path` line by line (without the newline) into `each` until the
/// stream ends, or `each` returns false (no one listens any more).
async fn lines(client: &Client, path: &str, mut each: impl FnMut(&[u8]) -> bool) -> anyhow::Result<()> {
    let mut body = client.request(Method::GET, path, None).await?.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("the stream broke")?;
        let Some(data) = frame.data_ref() else { continue };
        pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &pending[start..]) {
            if !each(&pending[start..start + end]) {
                return Ok(());
            }
            start += end + 1;
        }
        pending.drain(..start);
    }
    Ok(())
}
