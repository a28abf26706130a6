//! Windows: the local API over a named pipe, `\\.\pipe\steward-<hash of the state dir>`.
//!
//! How named pipes work, and what this relies on:
//! - A pipe server is a set of *instances* of one name. A client connects to an instance that
//!   is waiting (`ConnectNamedPipe`); while none is, clients get `ERROR_PIPE_BUSY`. So the
//!   [`Listener`] always keeps one instance waiting, and makes the next one the moment a client
//!   takes it, before the connection is handed to the HTTP server. The CLI retries on
//!   `ERROR_PIPE_BUSY` for a few seconds, for the short gap between two instances under load.
//! - The first instance is created with `FILE_FLAG_FIRST_PIPE_INSTANCE`: if any other process
//!   already owns the name, binding fails instead of sharing it (another steward with the same
//!   state dir is stopped earlier by the instance lock). Wine 8 ignores the flag.
//! - **Who may connect.** Every instance gets the security descriptor `D:P(A;;GA;;;OW)
//!   (A;;GA;;;BA)`: a protected DACL that grants everything to the owner (OW, the account
//!   steward runs as) and to Administrators (BA), and nothing to anyone else. It replaces the
//!   default, which lets Everyone read. Creating further instances of the name also needs
//!   access under this DACL, so nobody else can put an instance of their own in the pool.
//!   Remote clients (over SMB) are refused (`PIPE_REJECT_REMOTE_CLIENTS`).
//! - The pipe name is derived from the state dir, written in lower case with `\` separators
//!   (Windows paths are not case sensitive), so the CLI finds it from the config exactly as the
//!   daemon does. FNV-1a keeps the name stable across Rust versions and builds.
//!
//! Under Wine 8 (the Linux CI) pipes, the SDDL conversion and the security attributes are
//! accepted; Wine does not enforce pipe DACLs between its processes (all run as one user), so
//! that only the owner and Administrators get in is not checked there, and neither is the
//! refusal of a second first instance.

use std::ffi::c_void;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{LocalFree, ERROR_PIPE_BUSY, FALSE, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};

pub type Stream = tokio::net::windows::named_pipe::NamedPipeClient;

/// Owner and Administrators, full access; nobody else; not inherited from anywhere (`P`).
const PIPE_SDDL: &str = "D:P(A;;GA;;;OW)(A;;GA;;;BA)";

/// How long the CLI keeps trying while every instance is busy.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// After a failed accept, wait this long before trying again, so a persistent error (out of
/// handles, say) does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(500);

pub fn endpoint(state_dir: &Path) -> PathBuf {
    PathBuf::from(format!(r"\\.\pipe\steward-{:016x}", fnv1a(&normalized(state_dir))))
}

/// The state dir as the pipe name is derived from it: lower case, backslashes, no trailing one.
fn normalized(state_dir: &Path) -> String {
    let text = state_dir.to_string_lossy().replace('/', "\\").to_lowercase();
    text.trim_end_matches('\\').to_owned()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The pipe's server side: one instance waiting for the next client.
pub struct Listener {
    path: PathBuf,
    security: SecurityDescriptor,
    /// The instance clients connect to next; `None` only after creating one failed.
    waiting: Option<NamedPipeServer>,
}

/// Create the pipe (its first instance). Fails if another process owns the name.
pub fn bind(path: &Path) -> io::Result<Listener> {
    let security = SecurityDescriptor::from_sddl(PIPE_SDDL)?;
    let first = create_instance(path, &security, true)?;
    Ok(Listener { path: path.to_path_buf(), security, waiting: Some(first) })
}

fn create_instance(path: &Path, security: &SecurityDescriptor, first: bool) -> io::Result<NamedPipeServer> {
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: security.0,
        bInheritHandle: FALSE,
    };
    // SAFETY: `attributes` and the descriptor it points to live until the call returns; the
    // pipe keeps its own copy of the descriptor.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(
                path,
                (&mut attributes as *mut SECURITY_ATTRIBUTES).cast::<c_void>(),
            )
    }
}

impl Listener {
    /// Wait for a client on the waiting instance, and put a new one in its place.
    async fn accept_one(&mut self) -> io::Result<NamedPipeServer> {
        let waiting = match self.waiting.take() {
            Some(instance) => instance,
            None => create_instance(&self.path, &self.security, false)?,
        };
        // Kept in place while waiting, so that clients find it (connect takes &self).
        let waiting = &*self.waiting.insert(waiting);
        waiting.connect().await?;
        let connected = self.waiting.take().expect("put there above");
        // Make the next one before handing this one out; if that fails, the next accept
        // tries again.
        match create_instance(&self.path, &self.security, false) {
            Ok(next) => self.waiting = Some(next),
            Err(e) => tracing::warn!(
                event = "api",
                "cannot create the next instance of {}: {e}",
                self.path.display()
            ),
        }
        Ok(connected)
    }
}

impl axum::serve::Listener for Listener {
    type Io = NamedPipeServer;
    type Addr = PathBuf;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.accept_one().await {
                Ok(io) => return (io, self.path.clone()),
                Err(e) => {
                    // A client that went away before it was accepted breaks that instance
                    // only: replace it at once, so that clients always find one waiting.
                    // Only when no instance can be made is there a pause.
                    tracing::debug!(event = "api", "accept on {} failed: {e}", self.path.display());
                    match create_instance(&self.path, &self.security, false) {
                        Ok(fresh) => self.waiting = Some(fresh),
                        Err(e) => {
                            tracing::warn!(
                                event = "api",
                                "cannot create an instance of {}: {e}",
                                self.path.display()
                            );
                            self.waiting = None;
                            tokio::time::sleep(ACCEPT_RETRY).await;
                        }
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.path.clone())
    }
}

/// Connect to the daemon's pipe; while all its instances are busy, keep trying for a while.
pub async fn connect(path: &Path) -> io::Result<Stream> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match ClientOptions::new().open(path) {
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) && Instant::now() < deadline => {}
            result => return result,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serve `router` until `shutdown` completes, under the local pipe's connection limits.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    use crate::api::connections::{self, Limited, Limits};
    connections::serve(Limited::new(listener, Limits::LOCAL, "the local API pipe"), router, shutdown).await
}

/// A self-relative security descriptor made from SDDL; freed on drop.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is memory owned by this value (LocalAlloc'd), only read after creation.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above: after creation nothing writes to it, so shared reads are fine.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    fn from_sddl(sddl: &str) -> io::Result<Self> {
        let wide: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string in, an out pointer to a descriptor we then own.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == FALSE {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot build the pipe's security descriptor {sddl}: {e}"),
            ));
        }
        Ok(SecurityDescriptor(descriptor))
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW with LocalAlloc.
        unsafe { LocalFree(self.0 as HLOCAL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this runs under Wine: its ntdll exports `wine_get_version`.
    fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
        let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
        // SAFETY: NUL-terminated names; ntdll is always loaded.
        unsafe {
            let module = GetModuleHandleW(ntdll.as_ptr());
            !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }

    #[test]
    fn the_pipe_name_ignores_case_and_separators() {
        let a = endpoint(Path::new(r"C:\ProgramData\steward\.steward"));
        assert_eq!(a, endpoint(Path::new(r"c:/programdata/STEWARD/.steward/")));
        assert_ne!(a, endpoint(Path::new(r"C:\ProgramData\other\.steward")));
        assert!(a.to_string_lossy().starts_with(r"\\.\pipe\steward-"), "{}", a.display());
        // Fixed forever: a CLI of one version must find a daemon of another.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[tokio::test]
    async fn serves_several_clients_and_refuses_a_second_owner() {
        use http_body_util::{BodyExt, Full};
        use hyper_util::rt::TokioIo;

        let dir = tempfile::tempdir().unwrap();
        let path = endpoint(dir.path());
        let listener = bind(&path).expect("bind the pipe");
        match bind(&path) {
            // Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE. Should a later Wine honour it,
            // this fails: then drop this arm.
            Ok(_) if under_wine() => eprintln!("Wine does not refuse a second first instance, as expected"),
            Ok(_) => panic!("a second first instance of {} was allowed", path.display()),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
        }
        let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));
        // Three clients at once: each needs its own instance.
        let (mut senders, mut clients) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let stream = connect(&path).await.expect("connect");
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            clients.push(
                sender.send_request(
                    hyper::Request::get("/ping")
                        .header("host", "steward")
                        .body(Full::new(bytes::Bytes::new()))
                        .unwrap(),
                ),
            );
            senders.push(sender);
        }
        for reply in clients {
            let body = reply.await.unwrap().into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"pong");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
