//! Who sent a notify datagram, on Linux: with `SO_PASSCRED` on the socket, the kernel attaches
//! the sender's credentials (`SCM_CREDENTIALS`) to every datagram. The pid in them is the
//! kernel's word: only a privileged process can claim another pid.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use tokio::io::Interest;
use tokio::net::UnixDatagram;

use super::Sender;

/// Asks the kernel for the sender's credentials on every datagram from now on.
pub(super) fn pass_credentials(socket: &UnixDatagram) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, and an int option of the size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            ptr::from_ref(&on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one datagram into `buf`: its length and who sent it. Cancel-safe: the datagram
/// is taken whole inside one non-blocking call, or left queued.
pub(super) async fn recv(socket: &UnixDatagram, buf: &mut [u8]) -> io::Result<(usize, Sender)> {
    socket.async_io(Interest::READABLE, || recv_now(socket.as_raw_fd(), &mut *buf)).await
}

/// Room for the credentials and a few descriptors: sd_notify's `BARRIER=1` passes one, and
/// a sender may pass more. They are closed at once (this is what answers a barrier: every
/// message before it has been handled); ones that do not fit are closed by the kernel.
#[repr(C, align(8))]
struct Control([u8; 256]);

fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Sender)> {
    let mut control = Control([0; 256]);
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<Control>() as _;
    // SAFETY: `msg` describes valid buffers of the lengths it gives.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // Without credentials (which SO_PASSCRED guarantees) the sender is nobody we know.
    let mut sender = Sender::Pid(0);
    // SAFETY: the CMSG_* macros walk the control data the kernel filled in, within
    // `msg_controllen`; each payload is read unaligned, as it may not be aligned for its type.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if len >= size_of::<libc::ucred>() => {
                    let cred: libc::ucred = ptr::read_unaligned(data.cast());
                    sender = Sender::Pid(u32::try_from(cred.pid).unwrap_or(0));
                }
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    for i in 0..len / size_of::<libc::c_int>() {
                        let passed: libc::c_int = ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                        drop(OwnedFd::from_raw_fd(passed));
                    }
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, sender))
}
