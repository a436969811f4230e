//! Which calls' RTP sockets have datagrams waiting, asked once per media tick (Linux `epoll_wait` with no
//! timeout) instead of one read per call per tick. Most calls are silent most of the time (a caller listens
//! to the greeting, an IVR caller sends nothing at all until spoken to), and each empty read was a syscall:
//! with 400 calls, 20,000 a second that found nothing. Level-triggered, so a socket left with datagrams after
//! a tick's batch is reported again on the next tick. Elsewhere every socket is reported ready.

use std::net::UdpSocket;

#[cfg(target_os = "linux")]
pub struct Readiness {
    epfd: std::os::fd::OwnedFd,
    events: Vec<libc::epoll_event>,
}

#[cfg(target_os = "linux")]
impl Readiness {
    pub fn new() -> std::io::Result<Readiness> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 returns a new descriptor that nothing else owns, or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor owned from here on.
        Ok(Readiness { epfd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }, events: Vec::new() })
    }

    /// Watches `sock`; [`Readiness::ready`] reports it as `token`.
    pub fn add(&mut self, sock: &UdpSocket, token: u64) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: both descriptors are open for the duration of the call; `ev` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, sock.as_raw_fd(), &mut ev) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.events.push(libc::epoll_event { events: 0, u64: 0 });
        Ok(())
    }

    /// Stops watching `sock` (closing it would too; this keeps the event buffer's size in step).
    pub fn remove(&mut self, sock: &UdpSocket) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `add`; a null event is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_DEL, sock.as_raw_fd(), std::ptr::null_mut()) } == 0 {
            self.events.pop();
        }
    }

    /// Calls `on_ready` with the token of every watched socket that has a datagram waiting now; never blocks.
    pub fn ready(&mut self, mut on_ready: impl FnMut(u64)) {
        use std::os::fd::AsRawFd;
        if self.events.is_empty() {
            return;
        }
        // SAFETY: `events` has room for `len` entries, one per watched socket, so one call reports them all.
        let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), self.events.len() as libc::c_int, 0) };
        for ev in &self.events[..n.max(0) as usize] {
            on_ready(ev.u64);
        }
    }

    /// Whether sockets not reported by [`Readiness::ready`] can be skipped.
    pub const PRECISE: bool = true;
}

/// Without epoll: nothing is watched and the engine reads every socket every tick.
#[cfg(not(target_os = "linux"))]
pub struct Readiness;

#[cfg(not(target_os = "linux"))]
impl Readiness {
    pub fn new() -> std::io::Result<Readiness> {
        Ok(Readiness)
    }
    pub fn add(&mut self, _sock: &UdpSocket, _token: u64) -> std::io::Result<()> {
        Ok(())
    }
    pub fn remove(&mut self, _sock: &UdpSocket) {}
    pub fn ready(&mut self, _on_ready: impl FnMut(u64)) {}
    pub const PRECISE: bool = false;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn ready(r: &mut Readiness) -> Vec<u64> {
        let mut got = Vec::new();
        r.ready(|t| got.push(t));
        got.sort();
        got
    }

    /// Waits (without a clock) until a datagram is queued on the non-blocking `sock`, leaving it there.
    fn arrived(sock: &UdpSocket) {
        let mut buf = [0u8; 8];
        while sock.peek_from(&mut buf).is_err() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn only_sockets_with_datagrams_waiting_are_reported_until_drained() {
        let mut r = Readiness::new().unwrap();
        let (a, b) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
        a.set_nonblocking(true).unwrap();
        r.add(&a, 1).unwrap();
        r.add(&b, 2).unwrap();
        assert!(ready(&mut r).is_empty());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"x", a.local_addr().unwrap()).unwrap();
        peer.send_to(b"y", a.local_addr().unwrap()).unwrap();
        arrived(&a);
        assert_eq!(ready(&mut r), vec![1]);
        let mut buf = [0u8; 8];
        a.recv_from(&mut buf).unwrap();
        assert_eq!(ready(&mut r), vec![1], "one datagram is still waiting: reported again");
        a.recv_from(&mut buf).unwrap();
        assert!(ready(&mut r).is_empty());
        r.remove(&a);
        peer.send_to(b"z", a.local_addr().unwrap()).unwrap();
        arrived(&a);
        assert!(ready(&mut r).is_empty(), "removed sockets are not reported");
    }
}
