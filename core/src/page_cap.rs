//! The per-organization cap on pages per hour (`[paging] max_pages_per_hour`, issue #15 item 4).
//!
//! Anyone who can phone OnCall can open a request, and every request pages someone, through the
//! trunk when their contact is a phone number: a flood of anonymous calls becomes a bill. The cap
//! is a sliding hour: a request may page through the trunk while fewer than `max` requests did in
//! the hour before it. A request over the cap is not lost — it is still opened, stored and logged,
//! and its escalation still rings phones registered with OnCall and SIP URIs (they cost nothing) —
//! it only places no trunk call and sends no text. Requests over the cap are not counted, so the
//! trunk opens again as soon as the oldest counted page is an hour old.
//!
//! Pure policy: time is passed in. Deliberately not here: sharing the count between instances (each
//! instance caps the requests it pages; with several instances the cap is per instance).

use crate::timestamp::{Millis, Timestamp};
use std::collections::VecDeque;

/// The window the cap counts over.
pub const WINDOW: Millis = Millis::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapVerdict {
    /// Page as usual (counted).
    Page,
    /// `max` requests already paged through the trunk in the last hour.
    Capped { max: u32 },
}

/// When the requests of the last hour were paged (oldest first).
#[derive(Debug, Default)]
pub struct PageCap {
    paged: VecDeque<Timestamp>,
}

impl PageCap {
    /// Decides for one request starting to page at `now`, with `max` per hour (0: no cap).
    pub fn admit(&mut self, max: u32, now: Timestamp) -> CapVerdict {
        while self.paged.front().is_some_and(|t| now - *t >= WINDOW) {
            self.paged.pop_front();
        }
        if max == 0 {
            return CapVerdict::Page;
        }
        if self.paged.len() >= max as usize {
            return CapVerdict::Capped { max };
        }
        self.paged.push_back(now);
        CapVerdict::Page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attack: 150 anonymous calls in three seconds each open a request. With a cap of 60 an
    /// hour, 60 page through the trunk and 90 do not; an hour after the first, the trunk opens again.
    #[test]
    fn a_flood_of_requests_pages_through_the_trunk_at_most_max_times_an_hour() {
        let mut cap = PageCap::default();
        let t0 = Timestamp(1_800_000_000_000);
        let verdicts: Vec<CapVerdict> = (0..150).map(|i| cap.admit(60, t0 + Millis(i * 20))).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == CapVerdict::Page).count(), 60);
        assert!(
            verdicts[60..].iter().all(|v| *v == CapVerdict::Capped { max: 60 }),
            "every request after the 60th is capped"
        );
        // 59 minutes later it is still closed; the capped requests were not counted, so at one hour
        // after the first page there is room again, one page at a time as the old ones age out.
        assert_eq!(cap.admit(60, t0 + Millis::minutes(59)), CapVerdict::Capped { max: 60 });
        assert_eq!(cap.admit(60, t0 + WINDOW), CapVerdict::Page);
        assert_eq!(
            cap.admit(60, t0 + WINDOW),
            CapVerdict::Capped { max: 60 },
            "the 2nd page is 20 ms younger"
        );
        assert_eq!(cap.admit(60, t0 + WINDOW + Millis(20)), CapVerdict::Page);
        // Two hours on, the whole window is free.
        let later = t0 + Millis::hours(3);
        assert!((0..60).all(|i| cap.admit(60, later + Millis(i)) == CapVerdict::Page));
    }

    #[test]
    fn zero_means_no_cap() {
        let mut cap = PageCap::default();
        let t0 = Timestamp(0);
        assert!((0..1000).all(|i| cap.admit(0, t0 + Millis(i)) == CapVerdict::Page));
        assert_eq!(
            cap.admit(1, t0 + WINDOW + Millis(1000)),
            CapVerdict::Page,
            "nothing was kept while uncapped"
        );
    }
}
