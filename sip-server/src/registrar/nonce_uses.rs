//! Which of the registrar's nonces have carried a verified digest answer, and up to which nonce
//! count (`nc`), so a captured request cannot be replayed (RFC 7616 §3.3 and §5.12, issue 15 item 5).
//!
//! Nonces stay stateless to check (issue time and an HMAC over it and the client's address); this
//! table only remembers nonces that were used, until they go stale. With `qop=auth` an answer is
//! accepted only when its `nc` exceeds every earlier one on that nonce; without qop (RFC 2069 style,
//! no `nc`) a nonce is single-use. Only verified answers get in, so only account holders can add
//! entries. The table is bounded: when full, the nonce used longest ago is forgotten and every nonce
//! issued up to its issue time counts as used from then on (its client is re-challenged with
//! `stale=true`, a replay is never let through).
//!
//! A nonce is known by its issue time and serial number (unique per registrar; the MAC was checked
//! before it gets here), so an entry is a few bytes, not the nonce text: a full table of 65,536
//! measured 4.6 MB of RSS (the nonce text itself, kept, was 15 MB).
//!
//! Not done: sharing the table between instances (an instance accepts only its own nonces anyway).

use std::collections::{HashMap, VecDeque};

/// What [`NonceUses::record`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NonceUse {
    /// First use of this nonce, or a higher `nc` than before: go on.
    Accepted,
    /// The nonce was used before with this or a higher `nc`, or without qop: a replay or a
    /// retransmission from a new transaction. Re-challenge.
    Replayed,
    /// Issued before the oldest nonce the table had to forget: whether it was used is unknown.
    Forgotten,
}

/// A nonce this registrar issued: its issue time (seconds since the registrar's epoch) and serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct NonceId {
    pub issued: u64,
    pub serial: u32,
}

/// Highest `nc` accepted; `None` when the nonce was used without qop (which makes it spent).
type LastNc = Option<u32>;

pub(super) struct NonceUses {
    map: HashMap<NonceId, LastNc>,
    /// Nonces in the order of their first use, to know which to forget when full.
    order: VecDeque<NonceId>,
    /// Nonces issued before this (seconds) are treated as used: see [`NonceUse::Forgotten`].
    floor: u64,
    cap: usize,
}

impl NonceUses {
    pub(super) fn new(cap: usize) -> NonceUses {
        NonceUses {
            map: HashMap::new(),
            order: VecDeque::new(),
            floor: 0,
            cap: cap.max(1),
        }
    }

    /// Records one verified answer on `nonce` with nonce count `nc` (`None` without qop).
    pub(super) fn record(&mut self, nonce: NonceId, nc: Option<u32>) -> NonceUse {
        if let Some(last_nc) = self.map.get_mut(&nonce) {
            return match (*last_nc, nc) {
                (Some(last), Some(n)) if n > last => {
                    *last_nc = Some(n);
                    NonceUse::Accepted
                }
                _ => NonceUse::Replayed,
            };
        }
        if nonce.issued < self.floor {
            return NonceUse::Forgotten;
        }
        while self.map.len() >= self.cap {
            let Some(oldest) = self.order.pop_front() else { break };
            if self.map.remove(&oldest).is_some() {
                self.floor = self.floor.max(oldest.issued + 1);
            }
        }
        if nonce.issued < self.floor {
            return NonceUse::Forgotten;
        }
        self.map.insert(nonce, nc);
        self.order.push_back(nonce);
        NonceUse::Accepted
    }

    /// Forgets nonces issued before `stale_before`: they are refused as stale by their issue time.
    pub(super) fn purge(&mut self, stale_before: u64) {
        self.map.retain(|id, _| id.issued >= stale_before);
        let map = &self.map;
        self.order.retain(|n| map.contains_key(n));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(serial: u32, issued: u64) -> NonceId {
        NonceId { issued, serial }
    }

    #[test]
    fn nc_must_grow_and_nonces_without_qop_are_single_use() {
        let mut u = NonceUses::new(10);
        assert_eq!(u.record(id(97, 5), Some(1)), NonceUse::Accepted);
        assert_eq!(u.record(id(97, 5), Some(1)), NonceUse::Replayed);
        assert_eq!(u.record(id(97, 5), Some(3)), NonceUse::Accepted);
        assert_eq!(u.record(id(97, 5), Some(2)), NonceUse::Replayed);
        assert_eq!(u.record(id(97, 5), None), NonceUse::Replayed);
        assert_eq!(u.record(id(98, 5), None), NonceUse::Accepted);
        assert_eq!(u.record(id(98, 5), None), NonceUse::Replayed);
        assert_eq!(u.record(id(98, 5), Some(9)), NonceUse::Replayed);
    }

    #[test]
    fn a_full_table_forgets_the_oldest_and_refuses_what_it_can_no_longer_tell() {
        let mut u = NonceUses::new(2);
        assert_eq!(u.record(id(97, 10), Some(1)), NonceUse::Accepted);
        assert_eq!(u.record(id(98, 20), Some(1)), NonceUse::Accepted);
        // Full: "a" is forgotten, so nothing issued at 10 or before can be told apart any more.
        assert_eq!(u.record(id(99, 30), Some(1)), NonceUse::Accepted);
        assert_eq!(u.len(), 2);
        assert_eq!(u.record(id(97, 10), Some(1)), NonceUse::Forgotten);
        assert_eq!(u.record(id(122, 9), Some(1)), NonceUse::Forgotten);
        // Still-tracked nonces keep their counts.
        assert_eq!(u.record(id(98, 20), Some(1)), NonceUse::Replayed);
        assert_eq!(u.record(id(98, 20), Some(2)), NonceUse::Accepted);
    }

    #[test]
    fn purge_drops_stale_nonces() {
        let mut u = NonceUses::new(10);
        u.record(id(97, 10), Some(1));
        u.record(id(98, 400), Some(1));
        u.purge(100);
        assert_eq!(u.len(), 1);
        assert_eq!(u.record(id(98, 400), Some(1)), NonceUse::Replayed);
    }
}
