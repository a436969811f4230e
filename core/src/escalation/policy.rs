//! Escalation policies: ordered steps of targets, each with a wait, repeated N times.
//!
//! Step `i` notifies its targets (people directly, or whoever a schedule has on call when the
//! step starts), then waits `wait` before step `i+1`. After the last step the whole list runs
//! again `repeat` more times. When everything is exhausted the organization's managers are the
//! last resort, and after them the request is given up as exhausted.

use crate::ids::{OrgId, PersonId, PolicyId, ScheduleId};
use crate::timestamp::Millis;
use crate::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};

/// Whom a step notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    Person(PersonId),
    /// Whoever is on call in this schedule when the step starts.
    Schedule(ScheduleId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub targets: Vec<Target>,
    /// How long to wait for someone to answer before the next step.
    pub wait: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    pub id: PolicyId,
    pub org: OrgId,
    pub name: String,
    pub steps: Vec<Step>,
    /// Extra passes over all steps after the first (0 = run once).
    pub repeat: u32,
    /// Disabled policies are kept (history refers to them) but start no new escalation.
    #[serde(default)]
    pub disabled: bool,
}

impl EscalationPolicy {
    /// Whether a new escalation may run under this policy: enabled, with at least one step.
    pub fn can_start(&self) -> bool {
        !self.disabled && !self.steps.is_empty()
    }

    /// The index of the first step that notifies whoever `schedule` has on call, if any.
    pub fn first_step_paging(&self, schedule: ScheduleId) -> Option<usize> {
        self.steps.iter().position(|s| s.targets.contains(&Target::Schedule(schedule)))
    }
}

/// Input for a new policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPolicy {
    pub name: String,
    pub steps: Vec<Step>,
    pub repeat: u32,
}

/// Limits that keep a typo from paging someone for a week.
pub const MAX_REPEAT: u32 = 10;
pub const MAX_WAIT: Millis = Millis::hours(24);
pub const MIN_WAIT: Millis = Millis::seconds(30);

impl NewPolicy {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validation::non_blank("name", &self.name)?;
        if self.steps.is_empty() {
            return Err(ValidationError::new("steps", "a policy needs at least one step"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.targets.is_empty() {
                return Err(ValidationError::new(format!("steps[{i}].targets"), "a step needs at least one target"));
            }
            if step.wait < MIN_WAIT || step.wait > MAX_WAIT {
                return Err(ValidationError::new(format!("steps[{i}].wait"), "must be between 30 seconds and 24 hours"));
            }
        }
        if self.repeat > MAX_REPEAT {
            return Err(ValidationError::new("repeat", format!("must be at most {MAX_REPEAT}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let mut p = NewPolicy { name: "Default".into(), steps: vec![], repeat: 0 };
        assert_eq!(p.validate().unwrap_err().field, "steps");
        p.steps.push(Step { targets: vec![], wait: Millis::minutes(5) });
        assert_eq!(p.validate().unwrap_err().field, "steps[0].targets");
        p.steps[0].targets.push(Target::Person(PersonId(1)));
        p.steps[0].wait = Millis(0);
        assert_eq!(p.validate().unwrap_err().field, "steps[0].wait");
        p.steps[0].wait = Millis::minutes(5);
        p.repeat = 99;
        assert_eq!(p.validate().unwrap_err().field, "repeat");
        p.repeat = 2;
        assert!(p.validate().is_ok());
    }

    #[test]
    fn the_first_step_paging_a_schedule() {
        let step = |targets: Vec<Target>| Step { targets, wait: Millis::minutes(5) };
        let mut p = EscalationPolicy {
            id: PolicyId(1),
            org: OrgId(1),
            name: "Main".into(),
            steps: vec![
                step(vec![Target::Person(PersonId(7))]),
                step(vec![Target::Person(PersonId(8)), Target::Schedule(ScheduleId(3))]),
            ],
            repeat: 0,
            disabled: false,
        };
        assert_eq!(p.first_step_paging(ScheduleId(3)), Some(1));
        // A person whose id happens to equal the schedule's is not the schedule.
        assert_eq!(p.first_step_paging(ScheduleId(7)), None);
        assert!(p.can_start());
        p.disabled = true;
        assert!(!p.can_start());
        p.disabled = false;
        p.steps.clear();
        assert!(!p.can_start());
    }
}
