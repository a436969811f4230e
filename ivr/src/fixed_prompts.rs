//! The prompts the call flow plays by itself, whatever the menu says.
//!
//! Its own module so that both sides can name the list without importing each other: the flow
//! (`flow.rs`) plays these, and the menu (`menu.rs`) lists them among the prompts to check at start-up.

/// Prompts the flow itself plays, whatever the menu says.
pub const FIXED_PROMPTS: [&str; 11] = [
    "record_after_tone",
    "beep",
    "thank_you",
    "request_created",
    "please_hold",
    "hold_music",
    "everyone_unavailable",
    "staff_left",
    "closed_now",
    "call_back_after",
    "after_hours_emergency",
];
