//! The RTP port pool: even ports from a configured range, RTP on the even port and RTCP on the next
//! odd one (RFC 3550 §11). A port is only handed out if both binds succeed.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};

pub struct RtpPorts {
    ip: IpAddr,
    free: VecDeque<u16>,
}

impl RtpPorts {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        let start = min + (min % 2);
        let free = (start..max).step_by(2).collect();
        RtpPorts { ip, free }
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Binds a non-blocking RTP/RTCP socket pair; None when the range is exhausted.
    pub fn allocate(&mut self) -> Option<(UdpSocket, UdpSocket)> {
        for _ in 0..self.free.len() {
            let port = self.free.pop_front()?;
            let rtp = UdpSocket::bind(SocketAddr::new(self.ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(self.ip, port + 1));
            match (rtp, rtcp) {
                (Ok(a), Ok(b)) if a.set_nonblocking(true).is_ok() && b.set_nonblocking(true).is_ok() => return Some((a, b)),
                // Someone else holds it: keep it in the pool for later, try the next one.
                _ => self.free.push_back(port),
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.free.push_back(port);
    }
}
