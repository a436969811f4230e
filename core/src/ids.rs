//! Typed identifiers.
//!
//! Every row id is an `i64` in the database, but a `PersonId` is not a `ScheduleId`: mixing them
//! up is a compile error rather than a page sent to the wrong person. The wrappers are
//! `#[serde(transparent)]` so persisted engine state and JSON APIs see plain numbers.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw database value.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(/// An organization (tenant).
    OrgId, "org-");
id_type!(/// A person who can be paged.
    PersonId, "person-");
id_type!(/// A team of people.
    TeamId, "team-");
id_type!(/// An on-call schedule.
    ScheduleId, "schedule-");
id_type!(/// A schedule override ("X covers from..to").
    OverrideId, "override-");
id_type!(/// An escalation policy.
    PolicyId, "policy-");
id_type!(/// A request for help (one per incoming call or API submission).
    RequestId, "request-");
id_type!(/// A row of the `calls` table (not the SIP Call-ID, which is a string).
    CallRowId, "call-");
id_type!(/// A recording attached to a request.
    RecordingId, "recording-");
id_type!(/// A login of the web admin.
    UserId, "user-");
id_type!(/// A row of pending escalation work.
    WorkId, "work-");
