//! OnCall's IVR engine: the menu definition, the call flow state machine, and DTMF detection from
//! all three sources (RFC 4733 events, SIP INFO bodies, in-band tones), plus silence detection for
//! ending a recorded message. Everything here is sans-IO and driven by the media engine.

pub mod digit;
pub mod dtmf;
pub mod fixed_prompts;
pub mod flow;
pub mod menu;
pub mod menu_json;
pub mod page_flow;
pub mod silence;
pub mod spoken_time;

pub use digit::Digit;
pub use flow::{Input, IvrFlow, Output, RequestKind};
pub use menu::{IvrConfig, MenuProblem, Urgency};
