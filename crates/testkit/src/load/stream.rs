//! Where the load goes ([`Target`]) and the blocking connection to it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The address the load client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TCP address on this machine (a loopback address: see [`Target::check`]).
    Tcp(SocketAddr),
    /// A Unix-domain stream socket.
    #[cfg(unix)]
    Unix(PathBuf),
}

impl Target {
    /// Load goes to this machine only: a TCP target must be a loopback address. This is a test
    /// tool, and a load test that reached another machine would be a mistake.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Target::Tcp(addr) if !addr.ip().is_loopback() => {
                Err(format!("{addr} is not a loopback address: steward-loadgen only loads this machine"))
            }
            _ => Ok(()),
        }
    }

    /// The `Host` header's value.
    pub(crate) fn host(&self) -> String {
        match self {
            Target::Tcp(addr) => addr.to_string(),
            #[cfg(unix)]
            Target::Unix(_) => "localhost".to_owned(),
        }
    }
}

/// `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080` (its first loopback address), or on Unix
/// `unix:PATH`.
impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            #[cfg(unix)]
            return Ok(Target::Unix(path.into()));
            #[cfg(not(unix))]
            return Err(format!("unix:{path}: Unix-domain sockets are a Unix thing"));
        }
        if let Ok(addr) = text.parse() {
            return Ok(Target::Tcp(addr));
        }
        let addrs = text.to_socket_addrs().map_err(|e| format!("{text:?} is not an address: {e}"))?;
        let mut addrs: Vec<SocketAddr> = addrs.collect();
        // Prefer IPv4: `localhost` resolving to ::1 first would miss a server on 127.0.0.1.
        addrs.sort_by_key(|a| !a.is_ipv4());
        addrs
            .into_iter()
            .find(|a| a.ip().is_loopback())
            .map(Target::Tcp)
            .ok_or_else(|| format!("{text} has no loopback address: steward-loadgen only loads this machine"))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(addr) => write!(f, "{addr}"),
            #[cfg(unix)]
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A connected stream of either kind.
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    /// Connects to `target`, giving up after `timeout` (TCP; a local Unix connect does not
    /// wait).
    pub(crate) fn connect(target: &Target, timeout: Duration) -> io::Result<Stream> {
        match target {
            Target::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(addr, timeout)?;
                // Requests are written whole; do not let Nagle hold back the next one.
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            #[cfg(unix)]
            Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        }
    }

    /// `timeout` must not be zero.
    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
        }
    }

    /// `timeout` must not be zero.
    pub(crate) fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(Some(timeout)),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: Target = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(t, Target::Tcp("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(t.to_string(), "127.0.0.1:8080");
        assert!(t.check().is_ok());
        let v6: Target = "[::1]:80".parse().unwrap();
        assert!(v6.check().is_ok());
        let far: Target = "192.0.2.1:80".parse().unwrap();
        assert!(far.check().unwrap_err().contains("not a loopback address"));
        assert!("nonsense".parse::<Target>().is_err());
        #[cfg(unix)]
        {
            let u: Target = "unix:/run/x.sock".parse().unwrap();
            assert_eq!(u, Target::Unix("/run/x.sock".into()));
            assert_eq!(u.to_string(), "unix:/run/x.sock");
        }
    }
}
