//! Where "page on-call" callers wait for an employee, and where an employee who presses 1 finds them.
//!
//! The caller's IVR session puts its call in the room when it starts holding and looks at its slot on
//! every 20 ms frame; the employee's page session, on accepting, asks the room to connect it to that
//! caller and gets the other end of a [`BridgeLink`] (or nothing: the caller left, or someone else took
//! them). The paging task marks a slot when the escalation ran out of people. The two sessions may run
//! on different media threads, hence the mutex; it is held for a map lookup only.

use oncall_sip::media::bridge::BridgeLink;
use oncall_sip::ua::CallRef;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

enum Slot {
    Waiting,
    /// An employee connected; the caller's end waits to be picked up by the caller's session.
    Connected(BridgeLink),
    /// Taken by the caller's session: nobody else may connect.
    Talking,
    /// The escalation is exhausted: the caller is told and released.
    NobodyAvailable,
}

/// What a holding caller's session finds in its slot.
pub enum HoldNews {
    Nothing,
    Bridged(BridgeLink),
    NobodyAvailable,
}

#[derive(Clone, Default)]
pub struct HoldRoom {
    slots: Arc<Mutex<HashMap<CallRef, Slot>>>,
}

impl HoldRoom {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<CallRef, Slot>) -> R) -> R {
        f(&mut self.slots.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The caller starts waiting.
    pub fn enter(&self, caller: CallRef) {
        self.with(|m| m.insert(caller, Slot::Waiting));
    }

    /// The caller stops waiting or hangs up; a bridge already made is ended.
    pub fn leave(&self, caller: CallRef) {
        if let Some(Slot::Connected(link)) = self.with(|m| m.remove(&caller)) {
            link.close();
        }
    }

    /// Called by the caller's session each frame while it holds.
    pub fn poll(&self, caller: CallRef) -> HoldNews {
        self.with(|m| match m.get_mut(&caller) {
            Some(slot @ Slot::Connected(_)) => match std::mem::replace(slot, Slot::Talking) {
                Slot::Connected(link) => HoldNews::Bridged(link),
                _ => HoldNews::Nothing,
            },
            Some(Slot::NobodyAvailable) => {
                m.remove(&caller);
                HoldNews::NobodyAvailable
            }
            _ => HoldNews::Nothing,
        })
    }

    /// An employee accepted: their end of a bridge to the caller, if the caller still waits.
    pub fn connect(&self, caller: CallRef) -> Option<BridgeLink> {
        self.with(|m| match m.get_mut(&caller) {
            Some(slot @ Slot::Waiting) => {
                let (for_caller, for_employee) = BridgeLink::pair();
                *slot = Slot::Connected(for_caller);
                Some(for_employee)
            }
            _ => None,
        })
    }

    /// The escalation ran out of people: a caller still waiting is told so.
    pub fn nobody_available(&self, caller: CallRef) {
        self.with(|m| {
            if let Some(slot @ Slot::Waiting) = m.get_mut(&caller) {
                *slot = Slot::NobodyAvailable;
            }
        });
    }

    /// Callers waiting or talking (for /metrics and tests).
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_employee_connects_to_a_waiting_caller() {
        let room = HoldRoom::default();
        let caller = CallRef(1);
        assert!(room.connect(caller).is_none(), "nobody waits yet");
        room.enter(caller);
        assert!(matches!(room.poll(caller), HoldNews::Nothing));
        let employee = room.connect(caller).expect("the caller waits");
        assert!(room.connect(caller).is_none(), "a second employee finds the caller taken");
        let HoldNews::Bridged(for_caller) = room.poll(caller) else { panic!("the caller's end") };
        employee.send(&[5; 160]);
        let mut out = [0i16; 160];
        assert!(for_caller.recv(&mut out) && out[0] == 5);
        room.leave(caller);
        assert_eq!(room.len(), 0);
    }

    #[test]
    fn a_caller_who_leaves_before_picking_up_the_bridge_closes_it() {
        let room = HoldRoom::default();
        room.enter(CallRef(2));
        let employee = room.connect(CallRef(2)).unwrap();
        room.leave(CallRef(2));
        assert!(employee.is_closed());
    }

    #[test]
    fn nobody_available_reaches_only_a_waiting_caller_once() {
        let room = HoldRoom::default();
        room.nobody_available(CallRef(3));
        assert_eq!(room.len(), 0, "no slot is made for a caller who is not waiting");
        room.enter(CallRef(3));
        room.nobody_available(CallRef(3));
        assert!(matches!(room.poll(CallRef(3)), HoldNews::NobodyAvailable));
        assert!(matches!(room.poll(CallRef(3)), HoldNews::Nothing));
    }
}
