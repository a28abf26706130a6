//! Windows: steward's listening sockets reach a program through the systemfd protocol, the
//! one the `listenfd` crate reads on Windows (and `systemfd`, its author's tool, serves).
//!
//! # How Windows hands a socket to another process
//!
//! There are no fd numbers to pass. `WSADuplicateSocketW(socket, pid)` makes a copy of a
//! socket for process `pid` and describes it in a `WSAPROTOCOL_INFOW`; that process turns the
//! description into its own socket with `WSASocketW(FROM_PROTOCOL_INFO, ...)`. (Inheriting
//! the handle works too, but a program would then need a steward-specific variable to find
//! it, and neither std nor tokio can restrict inheritance to a handle list.) The systemfd
//! protocol carries the descriptions:
//!
//! 1. steward listens on a loopback TCP port of its own, the **handoff server** (not the
//!    program's socket), started the first time a process with sockets is spawned: a config
//!    without sockets costs no listener, no thread.
//! 2. The process gets `SYSTEMFD_SOCKET_SERVER=127.0.0.1:PORT` and
//!    `SYSTEMFD_SOCKET_SECRET=<uuid>`, a random v4 uuid new for each process, and the names in
//!    `STEWARD_SOCKET_NAMES=a,b` and `LISTEN_FDNAMES=a:b`.
//! 3. It connects, sends `<secret>|<its pid>`, shuts down its write side and reads to the end.
//! 4. steward answers with one 628-byte `WSAPROTOCOL_INFOW` per socket, in name order, from
//!    `WSADuplicateSocketW(socket, pid)` at that moment, then closes.
//!
//! # Who gets the sockets
//!
//! - Only the process the secret was given to: a request is answered when its secret is one
//!   steward handed out **and** its pid is the process it was handed to, and only once (the
//!   registration is forgotten after the answer). Anything else (an unknown secret, a wrong
//!   pid, garbage, more than [`MAX_REQUEST`] bytes, nothing within [`REQUEST_TIMEOUT`]) is
//!   closed without a byte. The copies are made for the registered pid, so even a stolen
//!   secret gives another process nothing it can use.
//! - A wrong pid does not use the registration up: a process that read the secret cannot
//!   deny the sockets to their owner. It is logged as a warning, because the usual cause is a
//!   wrapper (`cmd /c`, a launcher) whose child asks instead of the process steward started.
//! - A process that never asks loses its registration when it exits (its [`Handoff`] is held
//!   by its process tree) or [`REGISTRATION_TTL`] after it started, whichever comes first.
//! - No race between the request and the registration: the secret is registered before the
//!   process is created, and the pid is filled in while it is still suspended (`process`
//!   creates programs `CREATE_SUSPENDED` to put them in their Job Object first), so it cannot
//!   ask before steward knows it. A request that came before the pid anyway would wait for it
//!   (within [`REQUEST_TIMEOUT`]) rather than be refused.
//!
//! # The program's sockets themselves
//!
//! Not inheritable (socket2 creates them with `WSA_FLAG_NO_HANDLE_INHERIT`: a program gets
//! them by the handoff only), `SO_EXCLUSIVEADDRUSE` (on Windows, `SO_REUSEADDR` would let any
//! process bind the same port and take connections), and blocking: a socket's non-blocking
//! mode is shared by all its copies, so steward never sets it, never registers the socket with
//! its event loop, and leaves each program to choose for its copy (`listenfd` also detaches
//! the copy from any completion port before handing it over).
//!
//! # Under Wine 8
//!
//! The whole path works (tests/sockets_windows.rs). A graceful stop loses no connection; a
//! process killed with connections not yet accepted by it can lose one (docs/instances.md).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::windows::io::AsRawSocket;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use windows_sys::Win32::Networking::WinSock::{
    setsockopt, WSADuplicateSocketW, WSAGetLastError, SOCKET, SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
    WSAPROTOCOL_INFOW,
};

use super::Listener;

/// Where the handoff server listens (`127.0.0.1:PORT`).
pub const SERVER_VAR: &str = "SYSTEMFD_SOCKET_SERVER";
/// The process's own secret.
pub const SECRET_VAR: &str = "SYSTEMFD_SOCKET_SECRET";
/// The socket names, `,`-separated (`LISTEN_FDNAMES` has them too, `:`-separated).
pub const NAMES_VAR: &str = "STEWARD_SOCKET_NAMES";

/// The longest request read: `<36-character uuid>|<pid, at most 10 digits>` is 47 bytes.
pub const MAX_REQUEST: usize = 64;
/// The whole exchange of one connection, the wait for the pid included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process may take to ask for its sockets after it started.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(300);
/// After an accept error (out of handles, say), before the next accept.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// The size of one answer per socket; `listenfd` cuts the answer at this size.
const INFO_SIZE: usize = size_of::<WSAPROTOCOL_INFOW>();
const _: () = assert!(INFO_SIZE == 628);

/// The variables a process with `listeners` gets: the names, and no `LISTEN_FDS` or
/// `LISTEN_PID` (no fds on Windows: a program that reads them must not think it has any).
/// The handoff's own two come per process from [`Handoff::env`]. Without sockets, all of
/// them are removed, so that a steward started by `systemfd` passes nothing on by mistake.
pub fn child_env(listeners: &[Arc<Listener>]) -> Vec<(&'static str, Option<OsString>)> {
    let mut env = vec![("LISTEN_FDS", None), ("LISTEN_PID", None)];
    if listeners.is_empty() {
        env.extend([(SERVER_VAR, None), (SECRET_VAR, None), (NAMES_VAR, None), ("LISTEN_FDNAMES", None)]);
        return env;
    }
    let names: Vec<&str> = listeners.iter().map(|l| l.spec.name.as_str()).collect();
    env.push((NAMES_VAR, Some(names.join(",").into())));
    env.push(("LISTEN_FDNAMES", Some(names.join(":").into())));
    env
}

/// Make `socket` (not bound yet) the only one that may bind its address.
pub fn exclusive_address_use(socket: &socket2::Socket) -> io::Result<()> {
    let on: i32 = 1;
    // SAFETY: an open socket; the option value is an i32 read during the call.
    let status = unsafe {
        setsockopt(
            socket.as_raw_socket() as SOCKET,
            SOL_SOCKET,
            SO_EXCLUSIVEADDRUSE,
            (&on as *const i32).cast(),
            size_of::<i32>() as i32,
        )
    };
    if status != 0 {
        return Err(wsa_error());
    }
    Ok(())
}

/// The sockets offered to one process, from just before it is created until it takes them,
/// exits, or [`REGISTRATION_TTL`] passes. Dropping it withdraws the offer.
pub struct Handoff {
    server: &'static Server,
    /// Never logged.
    secret: String,
    /// The process's pid, once created.
    pid: watch::Sender<Option<u32>>,
}

impl Handoff {
    /// Offer `sockets` to the process of `program` about to be created (the name is for
    /// warnings), starting the handoff server the first time. Then set [`Handoff::env`] on
    /// its command, and call [`Handoff::started`] before it runs.
    pub fn offer(program: &str, sockets: &[&socket2::Socket]) -> io::Result<Handoff> {
        let server = server()?;
        // Copies of steward's own: the answer comes later, on the server's thread, and must not
        // depend on the program task still holding its sockets then.
        let sockets = sockets.iter().map(|s| s.try_clone()).collect::<io::Result<Vec<_>>>()?;
        let secret = uuid::Uuid::new_v4().to_string();
        let (pid, known) = watch::channel(None);
        server.offers().insert(secret.clone(), Offer { program: program.to_owned(), pid: known, sockets });
        let expiring = secret.clone();
        server.runtime.spawn(async move {
            tokio::time::sleep(REGISTRATION_TTL).await;
            server.offers().remove(&expiring);
        });
        Ok(Handoff { server, secret, pid })
    }

    /// The variables that tell the process where to ask, and with what.
    pub fn env(&self) -> [(&'static str, OsString); 2] {
        [(SERVER_VAR, self.server.addr.to_string().into()), (SECRET_VAR, self.secret.clone().into())]
    }

    /// The process was created as `pid` (and has not run yet): only it may take the sockets.
    pub fn started(&self, pid: u32) {
        self.pid.send_replace(Some(pid));
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.server.offers().remove(&self.secret);
    }
}

/// What a registration holds until its process asks.
struct Offer {
    program: String,
    /// `None` until the process is created.
    pid: watch::Receiver<Option<u32>>,
    sockets: Vec<socket2::Socket>,
}

/// The handoff server: a loopback listener served by a thread of its own (its own
/// single-threaded runtime), so it works whichever runtime, if any, the spawn runs on.
struct Server {
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    /// By secret.
    offers: Mutex<HashMap<String, Offer>>,
}

/// The server, once started; it lives as long as steward.
static SERVER: Mutex<Option<&'static Server>> = Mutex::new(None);

fn server() -> io::Result<&'static Server> {
    let mut server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = *server {
        return Ok(server);
    }
    let started = Server::start().map_err(|e| {
        io::Error::new(e.kind(), format!("cannot start the socket handoff server on 127.0.0.1: {e}"))
    })?;
    *server = Some(started);
    Ok(started)
}

impl Server {
    fn start() -> io::Result<&'static Server> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        // std's sockets are not inheritable: programs cannot see this one.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _in_runtime = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let server: &'static Server =
            Box::leak(Box::new(Server { addr, runtime: runtime.handle().clone(), offers: Mutex::default() }));
        std::thread::Builder::new()
            .name("socket-handoff".into())
            .spawn(move || runtime.block_on(server.serve(listener)))?;
        tracing::debug!(event = "socket-handoff", "socket handoff server listening on {addr}");
        Ok(server)
    }

    fn offers(&self) -> MutexGuard<'_, HashMap<String, Offer>> {
        self.offers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn serve(&'static self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(self.answer(stream));
                }
                Err(e) => {
                    tracing::warn!(event = "socket-handoff", "the socket handoff server cannot accept: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    }

    /// One connection: the sockets if the request is good, else a close without a byte.
    async fn answer(&'static self, mut stream: TcpStream) {
        let refused = match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&mut stream)).await {
            Ok(Ok(())) => return,
            Ok(Err(refused)) => refused,
            Err(_) => Refused::Timeout,
        };
        let mut reason = refused.to_string();
        let mut cause = std::error::Error::source(&refused);
        while let Some(c) = cause {
            reason.push_str(&format!(": {c}"));
            cause = c.source();
        }
        match &refused {
            // Someone holds a real secret: most likely a program that cannot get its sockets.
            Refused::WrongPid { program, registered: pid, .. } | Refused::Duplicate { program, pid, .. } => {
                tracing::warn!(program = %program, pid = *pid, event = "socket-handoff-refused",
                    "a request for the program's sockets was refused: {reason}")
            }
            _ => tracing::debug!(
                event = "socket-handoff-refused",
                "a request for sockets was refused: {reason}"
            ),
        }
        // Dropping the stream closes it.
    }

    async fn exchange(&self, stream: &mut TcpStream) -> Result<(), Refused> {
        let mut request = Vec::with_capacity(MAX_REQUEST + 1);
        (&mut *stream).take(MAX_REQUEST as u64 + 1).read_to_end(&mut request).await.map_err(Refused::Io)?;
        if request.len() > MAX_REQUEST {
            return Err(Refused::TooLong);
        }
        let (secret, pid) = parse_request(&request).ok_or(Refused::Malformed)?;
        let (program, mut known) = self
            .offers()
            .get(secret)
            .map(|o| (o.program.clone(), o.pid.clone()))
            .ok_or(Refused::UnknownSecret)?;
        // Before its pid is known only if the process ran before `started`: see the module doc.
        let registered = known.wait_for(Option::is_some).await.map_err(|_| Refused::Withdrawn)?.unwrap_or(0);
        if pid != registered {
            return Err(Refused::WrongPid { program, asked: pid, registered });
        }
        // Taken out first: two requests at once cannot both be answered.
        let offer = self.offers().remove(secret).ok_or(Refused::Withdrawn)?;
        let answer =
            duplicate(&offer.sockets, pid).map_err(|source| Refused::Duplicate { program, pid, source })?;
        stream.write_all(&answer).await.map_err(Refused::Io)?;
        stream.shutdown().await.map_err(Refused::Io)
    }
}

/// `<secret>|<pid>`, as `listenfd` sends it.
fn parse_request(request: &[u8]) -> Option<(&str, u32)> {
    let (secret, pid) = std::str::from_utf8(request).ok()?.split_once('|')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((secret, pid.parse().ok()?))
}

/// One `WSAPROTOCOL_INFOW` per socket, each a copy of it made for process `pid`.
fn duplicate(sockets: &[socket2::Socket], pid: u32) -> io::Result<Vec<u8>> {
    let mut answer = Vec::with_capacity(sockets.len() * INFO_SIZE);
    for socket in sockets {
        let mut info = WSAPROTOCOL_INFOW::default();
        // SAFETY: an open socket, owned by `sockets`; `info` is writable.
        if unsafe { WSADuplicateSocketW(socket.as_raw_socket() as SOCKET, pid, &mut info) } != 0 {
            return Err(wsa_error());
        }
        // SAFETY: a plain C struct of INFO_SIZE bytes, read as bytes (what the process reads
        // back); it has no padding.
        let bytes = unsafe {
            std::slice::from_raw_parts((&info as *const WSAPROTOCOL_INFOW).cast::<u8>(), INFO_SIZE)
        };
        answer.extend_from_slice(bytes);
    }
    Ok(answer)
}

fn wsa_error() -> io::Error {
    // SAFETY: reads the calling thread's last Winsock error.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// Why a request got nothing.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the connection failed")]
    Io(#[source] io::Error),
    #[error("longer than {MAX_REQUEST} bytes")]
    TooLong,
    #[error("not `<secret>|<pid>`")]
    Malformed,
    #[error("unknown secret")]
    UnknownSecret,
    #[error("the process it was for exited, took them already, or did not ask within {REGISTRATION_TTL:?}")]
    Withdrawn,
    #[error(
        "process {asked} asked for the sockets given to process {registered}; only the process steward \
         started may take them (is the command a wrapper, such as `cmd /c`? start the server itself)"
    )]
    WrongPid { program: String, asked: u32, registered: u32 },
    #[error("cannot copy the sockets for process {pid} (WSADuplicateSocketW)")]
    Duplicate {
        program: String,
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("no complete request within {REQUEST_TIMEOUT:?}")]
    Timeout,
}

#[cfg(test)]
mod tests {
    //! The server through its front door, as a program and as a hostile client see it. These
    //! run on Windows, and under Wine through `scripts/ci-windows.sh test`.

    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};

    use super::*;

    fn listening() -> socket2::Socket {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        exclusive_address_use(&socket).unwrap();
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into()).unwrap();
        socket.listen(8).unwrap();
        socket
    }

    /// Send `request` as `listenfd` does; return the whole answer.
    fn ask(handoff: &Handoff, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(handoff.server.addr).unwrap();
        stream.set_read_timeout(Some(REQUEST_TIMEOUT * 2)).unwrap();
        stream.write_all(request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        // A refusal may come as a reset rather than a clean close: both are "nothing".
        let _ = stream.read_to_end(&mut answer);
        answer
    }

    fn secret(handoff: &Handoff) -> String {
        handoff.env()[1].1.to_str().unwrap().to_owned()
    }

    #[test]
    fn requests_are_parsed_strictly() {
        let secret = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        assert_eq!(parse_request(format!("{secret}|1234").as_bytes()), Some((secret, 1234)));
        assert_eq!(parse_request(b"x|+12"), None);
        assert_eq!(parse_request(b"x|"), None);
        assert_eq!(parse_request(b"x|99999999999"), None);
        assert_eq!(parse_request(b"no separator"), None);
        assert_eq!(parse_request(b"\xff\xfe|12"), None);
    }

    #[test]
    fn the_registered_pid_gets_one_copy_per_socket_once() {
        let (a, b) = (listening(), listening());
        let handoff = Handoff::offer("test", &[&a, &b]).unwrap();
        let me = std::process::id();
        handoff.started(me);
        let (server, secret) = (handoff.env()[0].1.clone(), secret(&handoff));
        assert_eq!(server.to_str().unwrap(), handoff.server.addr.to_string());
        assert!(uuid::Uuid::parse_str(&secret).is_ok_and(|u| u.to_string() == secret), "{secret}");

        let answer = ask(&handoff, format!("{secret}|{me}").as_bytes());
        assert_eq!(answer.len(), 2 * INFO_SIZE);
        assert!(ask(&handoff, format!("{secret}|{me}").as_bytes()).is_empty(), "answered twice");
    }

    #[test]
    fn anything_but_the_secret_and_pid_gets_nothing_and_uses_nothing_up() {
        let socket = listening();
        let handoff = Handoff::offer("test", &[&socket]).unwrap();
        let me = std::process::id();
        handoff.started(me);
        let secret = secret(&handoff);
        for bad in [
            format!("{}|{me}", uuid::Uuid::new_v4()),
            format!("{secret}|{}", me + 4),
            format!("{secret}|"),
            format!("{}|{me}", secret.to_uppercase()),
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
            "x".repeat(MAX_REQUEST + 1),
            String::new(),
        ] {
            assert!(ask(&handoff, bad.as_bytes()).is_empty(), "answered {bad:?}");
        }
        // A client that sends nothing and never closes is cut off at the timeout; meanwhile
        // the server answers others.
        let mut silent = TcpStream::connect(handoff.server.addr).unwrap();
        let start = std::time::Instant::now();
        assert_eq!(ask(&handoff, format!("{secret}|{me}").as_bytes()).len(), INFO_SIZE);
        silent.set_read_timeout(Some(REQUEST_TIMEOUT * 3)).unwrap();
        let mut nothing = Vec::new();
        match silent.read_to_end(&mut nothing) {
            Ok(_) => assert!(nothing.is_empty()),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        }
        assert!(start.elapsed() >= REQUEST_TIMEOUT, "cut off after {:?}", start.elapsed());
    }

    #[test]
    fn a_withdrawn_offer_gets_nothing() {
        let socket = listening();
        let handoff = Handoff::offer("test", &[&socket]).unwrap();
        handoff.started(std::process::id());
        let request = format!("{}|{}", secret(&handoff), std::process::id());
        let server = handoff.server;
        drop(handoff);
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(answer.is_empty());
    }

    #[test]
    fn a_request_before_the_pid_waits_for_it() {
        let socket = listening();
        let handoff = Handoff::offer("test", &[&socket]).unwrap();
        let request = format!("{}|{}", secret(&handoff), std::process::id());
        let answer = std::thread::scope(|scope| {
            let asking = scope.spawn(|| ask(&handoff, request.as_bytes()));
            // The offer holds one receiver of the pid; a request waiting for it holds another.
            testkit::wait_until(testkit::DEADLINE, "the request to wait for the pid", || {
                (handoff.pid.receiver_count() == 2).then_some(())
            });
            handoff.started(std::process::id());
            asking.join().unwrap()
        });
        assert_eq!(answer.len(), INFO_SIZE);
    }
}
