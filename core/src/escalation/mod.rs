//! Escalation: policies (data) and the engine (a sans-IO state machine) that runs them.

pub mod engine;
pub mod policy;

pub use engine::{Command, Directory, Engine, Input, NotificationKey, Phase};
pub use policy::{EscalationPolicy, NewPolicy, Step, Target};
