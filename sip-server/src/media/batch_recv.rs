//! Reading every datagram waiting on a socket with one system call (Linux `recvmmsg` with
//! `MSG_DONTWAIT`), so a media tick costs one receive syscall per call instead of one per packet
//! plus the empty read that finds the queue drained. Elsewhere it falls back to `recv_from` in a loop.

use std::net::{SocketAddr, UdpSocket};

/// Datagrams read per call per tick at most (a flooding peer cannot starve the other calls).
pub const BATCH: usize = 8;
/// Room per datagram: G.711 RTP is 172 bytes at 20 ms, 492 at 60 ms; anything longer is cut and then
/// fails to parse, which is what should happen to it.
pub const SLOT: usize = 1500;

pub struct RecvBatch {
    bufs: Box<[[u8; SLOT]; BATCH]>,
    lens: [usize; BATCH],
    addrs: [Option<SocketAddr>; BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch { bufs: Box::new([[0; SLOT]; BATCH]), lens: [0; BATCH], addrs: [None; BATCH] }
    }
}

impl RecvBatch {
    /// The `i`-th datagram of the last [`RecvBatch::recv`] and where it came from.
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        (&self.bufs[i][..self.lens[i]], self.addrs[i])
    }

    /// Reads what is waiting on the non-blocking `sock`; returns how many datagrams (0 when none).
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, sock: &UdpSocket) -> usize {
        use std::os::fd::AsRawFd;
        // SAFETY: every pointer handed to recvmmsg points into `self.bufs`, `iov` or `names`, which
        // outlive the call; lengths match the buffers; the kernel writes at most `msg_len` bytes into
        // each iovec and at most `msg_namelen` bytes into each name.
        unsafe {
            let mut names: [libc::sockaddr_storage; BATCH] = std::mem::zeroed();
            let mut iov: [libc::iovec; BATCH] = std::mem::zeroed();
            let mut msgs: [libc::mmsghdr; BATCH] = std::mem::zeroed();
            for i in 0..BATCH {
                iov[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: SLOT };
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            }
            let n = libc::recvmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut());
            if n <= 0 {
                return 0;
            }
            let n = n as usize;
            for i in 0..n {
                self.lens[i] = (msgs[i].msg_len as usize).min(SLOT);
                self.addrs[i] = sockaddr_to_std(&names[i]);
            }
            n
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, sock: &UdpSocket) -> usize {
        let mut n = 0;
        while n < BATCH {
            match sock.recv_from(&mut self.bufs[n]) {
                Ok((len, from)) => {
                    self.lens[n] = len;
                    self.addrs[n] = Some(from);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }
}

#[cfg(target_os = "linux")]
fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in, which it is large enough for.
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_everything_waiting_in_one_call() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::default();
        assert_eq!(b.recv(&rx), 0, "nothing waiting");
        for i in 0..3u8 {
            tx.send_to(&[i; 10], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(b.recv(&rx), 3);
        for i in 0..3 {
            let (data, from) = b.get(i);
            assert_eq!(data, &[i as u8; 10]);
            assert_eq!(from, Some(tx.local_addr().unwrap()));
        }
        assert_eq!(b.recv(&rx), 0);
    }
}
