//! OnCall's domain: who is on call right now, and who to try next.
//!
//! This crate knows nothing of SIP or HTTP. It holds the model (organizations, people, teams,
//! schedules, escalation policies, requests, calls, recordings), the pure functions over it
//! (`schedule::on_call`, `schedule::shifts`, `metrics::compute`), the sans-IO escalation engine
//! (`escalation::Engine`) and the sqlx store (`store::Store`, SQLite or PostgreSQL).
//!
//! Time is always passed in (`Timestamp`); nothing below the store reads the clock.

pub mod browser_desk;
pub mod business_hours;
pub mod demo;
pub mod dial_plan;
pub mod destination;
pub mod escalation;
pub mod ids;
pub mod inbound;
pub mod metrics;
pub mod page_cap;
pub mod password;
pub mod person;
pub mod phone;
pub mod prometheus_text;
pub mod request;
pub mod schedule;
pub mod secret;
pub mod store;
pub mod text_reply;
pub mod timestamp;
pub mod transcript;
pub mod validation;
pub mod webhook;

pub use ids::*;
pub use person::{Channel, ContactPlan, NewPerson, NotificationRule, Person, Role};
pub use phone::{Contact, SipUri, E164};
pub use business_hours::{BusinessHours, PageWhen, Urgency};
pub use escalation::{Command, Engine, Input, NotificationKey};
pub use request::{Actor, NewRequest, RecordingKind, Request, RequestState, RequestStatus};
pub use schedule::{on_call, shifts, Schedule};
pub use store::{Organization, Store, StoreError};
pub use timestamp::{Millis, Timestamp};
pub use validation::ValidationError;
