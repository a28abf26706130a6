//! [`Receiver`]: a fake log receiver that speaks three real ingestion protocols, applies the
//! real servers' rules, stores what it accepted decoded into plain structs, and fails on demand.
//! For testing steward's log shipper against something that answers as the real thing would.
//!
//! A real HTTP/1.1 server on `127.0.0.1:0` (HTTPS, and mTLS, on request), run by a tokio
//! runtime on its own thread, so that sync `#[test]`s and async tests use it alike; stopped and
//! joined on `Drop`.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::receiver::{Endpoint, Fault, Receiver, Times};
//!
//! let rx = Receiver::start();
//! let url = rx.url("/loki/api/v1/push"); // give this to the shipper
//! rx.inject_on(Endpoint::Loki, Fault::Status(503), Times::Next(2));
//! rx.wait_for("3 Loki entries", testkit::DEADLINE, |s| s.loki.len() == 3);
//! assert_eq!(rx.state().answered(Endpoint::Loki, 503), 2);
//! ```
//!
//! # Endpoints and the rules they apply
//!
//! - **Loki** `POST /loki/api/v1/push` ([`loki`]): `application/x-protobuf` (snappy block
//!   format of `logproto.PushRequest`) or `application/json`; `Content-Encoding: gzip` too.
//!   204 on success. An exact duplicate (same labels, nanosecond timestamp and line) is dropped
//!   silently, at any age (so a retried push gets 204); an entry older than its stream's newest minus [`Builder::loki_window`] (default
//!   zero: strictly in order) is refused with Loki's `entry too far behind` 400, while the
//!   request's other entries are stored; a stream without labels, or with labels that do not
//!   parse, is refused with a 400 the same way.
//! - **Elasticsearch** `POST /_bulk` and `POST /{index}/_bulk` ([`elastic`]): NDJSON that must end
//!   in `\n`; `create` and `index` actions. Items: 201 created, 200 updated (`index` over an
//!   existing id), 409 `version_conflict_engine_exception` (`create` over an existing id), 400
//!   without an index, 400 `mapper_parsing_exception` for a source that is not a JSON object,
//!   429 `es_rejected_execution_exception` for the items chosen with
//!   [`Receiver::elastic_reject_items`].
//! - **OTLP/HTTP** `POST /v1/logs` ([`otlp`]): `ExportLogsServiceRequest` as
//!   `application/x-protobuf` or `application/json`, gzip or not; 200 with an
//!   `ExportLogsServiceResponse` in the request's encoding, with a `partial_success` when
//!   [`Receiver::otlp_partial_success`] asked for one. Another content type gets 415.
//!
//! Any other path gets 404. A `Content-Encoding` other than `gzip` or `identity` gets 415.
//!
//! # Faults
//!
//! [`Receiver::inject`] (all endpoints) and [`Receiver::inject_on`] (one) make the next
//! [`Times::Next`]`(n)` requests, or all until [`Receiver::clear_faults`], fail with a
//! [`Fault`]: a status (500, 503, 413, 400, ...), 429 with `Retry-After`, a delay before the
//! normal answer, a connection dropped mid-body, or refused connections. Rules are tried in the
//! order they were set; the first that matches a request is used (and counted down). A request
//! a fault fails stores nothing.
//!
//! # Inspection and waiting
//!
//! [`Receiver::state`] copies the [`State`]: what was stored ([`LokiEntry`], [`EsDoc`],
//! [`OtlpRecord`]) and counters (requests and body bytes per endpoint, answers per endpoint and
//! status, Loki duplicates, Elasticsearch conflicts, refused and reset connections, failed TLS
//! handshakes), with the headers of each endpoint's last request. [`Receiver::wait_for`]
//! (blocking) and [`Receiver::wait_for_async`] wait for a condition on the state: they wake
//! each time a request has been answered, with no timer, and panic at the deadline with what
//! they waited for and a summary of the state.
//!
//! # Counting only
//!
//! [`Builder::count_only`] keeps memory nearly flat for runs of millions of lines (the
//! benchmarks' `steward-receiver --count-only`): the same decoding, rules and answers, but
//! `State::loki` and `State::otlp` stay empty and Elasticsearch documents are kept without
//! their source; [`State::stored`] counts what was accepted in both modes. Loki's duplicate
//! rule then remembers a 64-bit hash of each entry instead of its line: a million entries as
//! steward sends them peak under 40 MB, against some 1.8 GB when they are stored.

pub mod elastic;
pub mod loki;
pub mod otlp;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{watch, Notify};

use crate::pki::Pki;

pub use elastic::EsDoc;
pub use loki::LokiEntry;
pub use otlp::OtlpRecord;

/// The three protocols, and `Other` for requests to any other path (answered 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Loki,
    Elastic,
    Otlp,
    Other,
}

/// How a request fails; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Close the connection without answering: new connections at accept (only for a fault
    /// set on all endpoints, since the endpoint is not known yet), and a request arriving on a
    /// connection already open as soon as its head is read.
    Refuse,
    /// Answer with this status and a short text body.
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// Wait this long, then answer normally (and store).
    Slow(Duration),
    /// Read this many bytes of the body (or all of it, if shorter), then drop the connection
    /// without answering.
    ResetMidBody { after_bytes: usize },
    /// Store the request as usual, then never answer: the acknowledgement is lost (a receiver
    /// that crashed after writing, a network cut after the server read it all).
    AnswerLost,
}

/// How many requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Next(u32),
    UntilCleared,
}

/// What the receiver has stored and counted; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub loki: Vec<LokiEntry>,
    pub elastic: Vec<EsDoc>,
    pub otlp: Vec<OtlpRecord>,
    /// Requests whose head was read, per endpoint (faulted ones too).
    pub requests: BTreeMap<Endpoint, u64>,
    /// Requests answered, per endpoint and status.
    pub answered: BTreeMap<(Endpoint, u16), u64>,
    /// Body bytes read, as sent (compressed if it was), per endpoint.
    pub bytes: BTreeMap<Endpoint, u64>,
    /// Exact duplicates Loki dropped silently.
    pub loki_duplicates: u64,
    /// Entries Loki refused as too far behind.
    pub loki_out_of_order: u64,
    /// Bulk items answered 409.
    pub elastic_conflicts: u64,
    /// Bulk items answered 429 (by [`Receiver::elastic_reject_items`]).
    pub elastic_rejected: u64,
    /// Connections closed unanswered by [`Fault::Refuse`].
    pub refused: u64,
    /// Connections dropped by [`Fault::ResetMidBody`].
    pub resets: u64,
    /// TLS handshakes that failed (a client certificate refused, say).
    pub tls_failures: u64,
    /// The headers of the last request, per endpoint.
    pub last_headers: BTreeMap<Endpoint, HeaderMap>,
    /// Entries, documents and records accepted, per endpoint: what `loki`, `elastic` and
    /// `otlp` got, also when counting only (an `index` over an existing document is not new).
    pub stored: BTreeMap<Endpoint, u64>,
    /// When the first and the last request that stored something were handled.
    pub first_stored_at: Option<SystemTime>,
    pub last_stored_at: Option<SystemTime>,
    /// [`Builder::count_only`].
    count_only: bool,
    loki_streams: loki::Streams,
    elastic_ids: elastic::Ids,
}

impl State {
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.requests.get(&endpoint).copied().unwrap_or(0)
    }

    pub fn answered(&self, endpoint: Endpoint, status: u16) -> u64 {
        self.answered.get(&(endpoint, status)).copied().unwrap_or(0)
    }

    pub fn bytes(&self, endpoint: Endpoint) -> u64 {
        self.bytes.get(&endpoint).copied().unwrap_or(0)
    }

    /// What the endpoint accepted; see [`State::stored`](State#structfield.stored).
    pub fn stored(&self, endpoint: Endpoint) -> u64 {
        self.stored.get(&endpoint).copied().unwrap_or(0)
    }

    /// Counts `n` more accepted at `endpoint`, now.
    fn note_stored(&mut self, endpoint: Endpoint, n: usize) {
        if n == 0 {
            return;
        }
        *self.stored.entry(endpoint).or_default() += n as u64;
        let now = SystemTime::now();
        self.first_stored_at.get_or_insert(now);
        self.last_stored_at = Some(now);
    }

    /// A header of the endpoint's last request, if it had it and it is text.
    pub fn last_header(&self, endpoint: Endpoint, name: &str) -> Option<String> {
        let value = self.last_headers.get(&endpoint)?.get(name)?;
        value.to_str().ok().map(str::to_owned)
    }

    /// Counts, not contents: for a failed wait's message.
    pub fn summary(&self) -> String {
        format!(
            "stored: {} Loki entries, {} Elasticsearch docs, {} OTLP records; requests: {:?}; \
             answered: {:?}; Loki duplicates {}, out of order {}; Elasticsearch conflicts {}, \
             rejected {}; refused {}, resets {}, TLS failures {}",
            self.loki.len(),
            self.elastic.len(),
            self.otlp.len(),
            self.requests,
            self.answered,
            self.loki_duplicates,
            self.loki_out_of_order,
            self.elastic_conflicts,
            self.elastic_rejected,
            self.refused,
            self.resets,
            self.tls_failures,
        )
    }
}

/// Options of a [`Receiver`] to start.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    tls: Option<(Pki, bool)>,
    loki_window: Duration,
    count_only: bool,
    listen: Option<SocketAddr>,
}

impl Builder {
    /// Serve HTTPS with a certificate of `pki` (see [`Receiver::pki`]).
    pub fn tls(mut self, pki: Pki) -> Self {
        self.tls = Some((pki, false));
        self
    }

    /// Serve HTTPS and require a client certificate signed by `pki`'s CA.
    pub fn mtls(mut self, pki: Pki) -> Self {
        self.tls = Some((pki, true));
        self
    }

    /// How far behind its stream's newest entry a Loki entry may be and still be accepted.
    /// Zero (the default) accepts no entry older than the newest; Loki's own default with
    /// unordered writes is `max_chunk_age / 2`, one hour.
    pub fn loki_window(mut self, window: Duration) -> Self {
        self.loki_window = window;
        self
    }

    /// Count what is accepted without keeping it; see the module doc.
    pub fn count_only(mut self, count_only: bool) -> Self {
        self.count_only = count_only;
        self
    }

    /// Listen on this address instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// # Panics
    /// If the address (127.0.0.1:0 unless [`Builder::listen`]) cannot be bound or the thread
    /// cannot start.
    pub fn start(self) -> Receiver {
        let at = self.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = std::net::TcpListener::bind(at).unwrap_or_else(|e| panic!("bind {at}: {e}"));
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let (generation, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State { count_only: self.count_only, ..State::default() }),
            changed: Condvar::new(),
            generation,
            plans: Mutex::new(Plans::default()),
            loki_window: self.loki_window,
        });
        let acceptor = self
            .tls
            .as_ref()
            .map(|(pki, mutual)| tokio_rustls::TlsAcceptor::from(pki.server_config(*mutual)));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                rt.block_on(accept(listener, acceptor, for_thread, stopped));
                // Dropping the runtime ends the connections still open.
            })
            .expect("start the receiver's thread");
        Receiver { addr, pki: self.tls.map(|(pki, _)| pki), shared, stop: Some(stop), thread: Some(thread) }
    }
}

/// The fake receiver; see the module doc.
pub struct Receiver {
    addr: SocketAddr,
    pki: Option<Pki>,
    shared: Arc<Shared>,
    /// Tells the accept loop to return; the thread then drops its runtime.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// A plain-HTTP receiver with the default rules.
    pub fn start() -> Receiver {
        Builder::default().start()
    }

    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http(s)://127.0.0.1:PORT/path` (path with or without its leading `/`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// The certificates of an HTTPS receiver: its CA for the client's `ca_file`, and a client
    /// certificate and key it accepts.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// Fails requests to every endpoint; see [`Fault`].
    pub fn inject(&self, fault: Fault, times: Times) {
        self.add_rule(None, fault, times);
    }

    /// Fails requests to one endpoint; see [`Fault`].
    pub fn inject_on(&self, endpoint: Endpoint, fault: Fault, times: Times) {
        self.add_rule(Some(endpoint), fault, times);
    }

    fn add_rule(&self, endpoint: Option<Endpoint>, fault: Fault, times: Times) {
        let left = match times {
            Times::Next(0) => return,
            Times::Next(n) => Some(n),
            Times::UntilCleared => None,
        };
        lock(&self.shared.plans).faults.push(Rule { endpoint, fault, left });
    }

    /// Removes every fault; requests are answered normally from now on.
    pub fn clear_faults(&self) {
        lock(&self.shared.plans).faults.clear();
    }

    /// The next `_bulk` request answers 429 `es_rejected_execution_exception` for the items at
    /// these positions (0-based, in request order), and handles the others normally.
    pub fn elastic_reject_items(&self, positions: &[usize]) {
        lock(&self.shared.plans).elastic_reject = Some(positions.to_vec());
    }

    /// The next OTLP request is answered with `partial_success { rejected_log_records,
    /// error_message }`; its last `rejected` records are not stored.
    pub fn otlp_partial_success(&self, rejected: i64, message: &str) {
        lock(&self.shared.plans).otlp_partial = Some((rejected, message.to_owned()));
    }

    /// A copy of the state.
    pub fn state(&self) -> State {
        lock(&self.shared.state).clone()
    }

    /// Reads the state in place (no copy of what was stored).
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&lock(&self.shared.state))
    }

    /// Blocks until `cond` holds for the state, checking now and each time a request has been
    /// answered (or a connection refused or reset).
    ///
    /// # Panics
    /// After `deadline`, with `what` and [`State::summary`].
    #[track_caller]
    pub fn wait_for(&self, what: &str, deadline: Duration, cond: impl Fn(&State) -> bool) {
        let start = Instant::now();
        let mut state = lock(&self.shared.state);
        loop {
            if cond(&state) {
                return;
            }
            let Some(left) = deadline.checked_sub(start.elapsed()) else { break };
            state = self.shared.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        panic!("timed out after {deadline:?} waiting for {what}\n{}", state.summary());
    }

    /// [`Receiver::wait_for`] for async tests: the same wake-ups, through a `watch` channel.
    ///
    /// # Panics
    /// After `deadline`, with `what` and [`State::summary`].
    pub async fn wait_for_async(&self, what: &str, deadline: Duration, cond: impl Fn(&State) -> bool) {
        let until = tokio::time::Instant::now() + deadline;
        let mut changes = self.shared.generation.subscribe();
        loop {
            // Marks the current generation seen before checking, so that a change after the
            // check wakes `changed` below.
            changes.borrow_and_update();
            if cond(&lock(&self.shared.state)) {
                return;
            }
            if tokio::time::timeout_at(until, changes.changed()).await.is_err() {
                break;
            }
        }
        panic!("timed out after {deadline:?} waiting for {what}\n{}", lock(&self.shared.state).summary());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the test set up for requests to come.
#[derive(Default)]
struct Plans {
    faults: Vec<Rule>,
    elastic_reject: Option<Vec<usize>>,
    otlp_partial: Option<(i64, String)>,
}

struct Rule {
    /// `None`: every endpoint.
    endpoint: Option<Endpoint>,
    fault: Fault,
    /// Requests still to fail; `None` until cleared.
    left: Option<u32>,
}

impl Plans {
    /// The fault for a request (or connection) to `endpoint`, counted down; `accept` looks for
    /// a [`Fault::Refuse`] set on every endpoint only.
    fn take_fault(&mut self, endpoint: Option<Endpoint>) -> Option<Fault> {
        let at = self.faults.iter().position(|rule| match endpoint {
            None => rule.endpoint.is_none() && rule.fault == Fault::Refuse,
            Some(e) => rule.endpoint.is_none_or(|r| r == e),
        })?;
        let rule = &mut self.faults[at];
        let fault = rule.fault.clone();
        if let Some(left) = &mut rule.left {
            *left -= 1;
            if *left == 0 {
                self.faults.remove(at);
            }
        }
        Some(fault)
    }
}

struct Shared {
    state: Mutex<State>,
    /// Notified (all) after each change of `state`, for [`Receiver::wait_for`].
    changed: Condvar,
    /// Bumped after each change of `state`, for [`Receiver::wait_for_async`].
    generation: watch::Sender<u64>,
    plans: Mutex<Plans>,
    loki_window: Duration,
}

impl Shared {
    /// Changes the state and wakes the waiters.
    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut lock(&self.state));
        self.changed.notify_all();
        self.generation.send_modify(|n| *n += 1);
        out
    }
}

/// A poisoned lock only means a test's condition panicked; the state is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("register the listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        if lock(&shared.plans).take_fault(None).is_some() {
            drop(stream);
            shared.update(|s| s.refused += 1);
            continue;
        }
        let (shared, tls) = (shared.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => serve(TokioIo::new(stream), shared).await,
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => serve(TokioIo::new(stream), shared).await,
                    Err(_) => shared.update(|s| s.tls_failures += 1),
                },
            }
        });
    }
}

/// Serves one connection until the client closes it, or a fault drops it.
async fn serve<IO>(io: IO, shared: Arc<Shared>)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // A fault that drops the connection notifies this; the select below then drops the
    // connection (and the request being handled) without writing an answer.
    let drop_it = Arc::new(Notify::new());
    let for_service = drop_it.clone();
    let service = hyper::service::service_fn(move |req| {
        let (shared, drop_it) = (shared.clone(), for_service.clone());
        async move { Ok::<_, Infallible>(handle(req, &shared, &drop_it).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        () = drop_it.notified() => {}
    }
}

/// An answer of a protocol module: status, content type and body.
pub(crate) struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Answer {
    pub(crate) fn text(status: u16, text: impl Into<String>) -> Answer {
        Answer { status, content_type: "text/plain; charset=utf-8", body: text.into().into_bytes() }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Answer {
        Answer { status, content_type: "application/json", body: value.to_string().into_bytes() }
    }
}

fn endpoint_of(req: &Request<Incoming>) -> (Endpoint, Option<String>) {
    if req.method() != hyper::Method::POST {
        return (Endpoint::Other, None);
    }
    match req.uri().path() {
        "/loki/api/v1/push" => (Endpoint::Loki, None),
        "/v1/logs" => (Endpoint::Otlp, None),
        "/_bulk" => (Endpoint::Elastic, None),
        path => match path.strip_prefix('/').and_then(|p| p.strip_suffix("/_bulk")) {
            Some(index) if !index.is_empty() && !index.contains('/') => {
                (Endpoint::Elastic, Some(index.to_owned()))
            }
            _ => (Endpoint::Other, None),
        },
    }
}

async fn handle(req: Request<Incoming>, shared: &Shared, drop_it: &Notify) -> Response<Full<Bytes>> {
    let (endpoint, index) = endpoint_of(&req);
    let fault = shared.update(|s| {
        *s.requests.entry(endpoint).or_default() += 1;
        s.last_headers.insert(endpoint, req.headers().clone());
        lock(&shared.plans).take_fault(Some(endpoint))
    });
    let (parts, mut body) = req.into_parts();
    let respond = |answer: Answer, extra: Option<(&str, String)>| {
        shared.update(|s| *s.answered.entry((endpoint, answer.status)).or_default() += 1);
        let mut response = Response::builder()
            .status(answer.status)
            .header(hyper::header::CONTENT_TYPE, answer.content_type);
        if let Some((name, value)) = extra {
            response = response.header(name, value);
        }
        response.body(Full::new(Bytes::from(answer.body))).expect("a valid response")
    };
    let count = |n: usize| shared.update(|s| *s.bytes.entry(endpoint).or_default() += n as u64);
    match fault {
        Some(Fault::Refuse) => {
            shared.update(|s| s.refused += 1);
            return hang_up(drop_it).await;
        }
        Some(Fault::ResetMidBody { after_bytes }) => {
            let mut read = 0;
            while read < after_bytes {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    _ => break,
                }
            }
            count(read);
            shared.update(|s| s.resets += 1);
            return hang_up(drop_it).await;
        }
        _ => {}
    }
    // Read the whole body even when failing it, so that the client is not cut off mid-send.
    let data = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        // The client went away: nobody to answer.
        Err(_) => return hang_up(drop_it).await,
    };
    count(data.len());
    match fault {
        Some(Fault::Status(code)) => {
            return respond(Answer::text(code, format!("injected fault: {code}\n")), None)
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return respond(
                Answer::text(429, "injected fault: 429 too many requests\n"),
                Some(("retry-after", retry_after_secs.to_string())),
            );
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let data = match decode_content(&parts.headers, &data) {
        Ok(data) => data,
        Err(answer) => return respond(answer, None),
    };
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let answer = match endpoint {
        Endpoint::Loki => {
            let push = loki::decode(&content_type, &data);
            shared.update(|s| match push {
                Ok(push) => loki::store(s, push, shared.loki_window),
                Err(answer) => answer,
            })
        }
        Endpoint::Elastic => {
            let reject = lock(&shared.plans).elastic_reject.take().unwrap_or_default();
            shared.update(|s| elastic::bulk(s, index.as_deref(), &data, &reject))
        }
        Endpoint::Otlp => {
            let partial = lock(&shared.plans).otlp_partial.take();
            shared.update(|s| otlp::export(s, &content_type, &data, partial))
        }
        Endpoint::Other => Answer::text(404, "404 page not found\n"),
    };
    if fault == Some(Fault::AnswerLost) {
        return hang_up(drop_it).await;
    }
    respond(answer, None)
}

/// Makes `serve` drop the connection; this request is never answered.
async fn hang_up(drop_it: &Notify) -> Response<Full<Bytes>> {
    drop_it.notify_one();
    std::future::pending().await
}

/// The body without its `Content-Encoding`, or the 415 the servers give for one they lack.
fn decode_content(headers: &HeaderMap, data: &[u8]) -> Result<Vec<u8>, Answer> {
    let encoding =
        headers.get(hyper::header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(data.to_vec()),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| Answer::text(400, format!("gzip: invalid body: {e}\n")))
        }
        other => Err(Answer::text(415, format!("unsupported Content-Encoding: {other}\n"))),
    }
}
