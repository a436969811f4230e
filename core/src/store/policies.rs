//! Escalation policies, and the `Directory` snapshot the engine runs on.

use super::rows::{corrupt, i64_, opt_i64, string, u32_};
use super::{Result, Store, StoreError};
use crate::escalation::{Directory, EscalationPolicy, NewPolicy, Step, Target};
use crate::ids::{OrgId, PersonId, PolicyId, ScheduleId};
use crate::timestamp::{Millis, Timestamp};
use crate::validation::ValidationError;
use std::collections::HashMap;

impl Store {
    /// Validates and stores a policy (targets must belong to the organization), all or nothing.
    pub async fn create_policy(&self, org: OrgId, new: &NewPolicy, now: Timestamp) -> Result<PolicyId> {
        new.validate()?;
        let people: Vec<PersonId> = new
            .steps
            .iter()
            .flat_map(|s| s.targets.iter())
            .filter_map(|t| match t {
                Target::Person(p) => Some(*p),
                Target::Schedule(_) => None,
            })
            .collect();
        self.check_people_exist(org, &people, "steps.targets").await?;
        let schedules = sqlx::query("SELECT id FROM schedules WHERE org_id = $1")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let known: Vec<i64> = schedules.iter().map(|r| i64_(r, "id")).collect::<Result<_>>()?;
        for (i, step) in new.steps.iter().enumerate() {
            for t in &step.targets {
                if let Target::Schedule(s) = t {
                    if !known.contains(&s.0) {
                        return Err(ValidationError::new(format!("steps[{i}].targets"), format!("{s} is not a schedule of this organization")).into());
                    }
                }
            }
        }

        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("INSERT INTO escalation_policies (org_id, name, repeat_count, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(org.0)
            .bind(new.name.trim())
            .bind(i64::from(new.repeat))
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        let id = i64_(&row, "id")?;
        for (pos, step) in new.steps.iter().enumerate() {
            let row = sqlx::query("INSERT INTO escalation_steps (org_id, policy_id, position, wait_ms) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(org.0)
                .bind(id)
                .bind(pos as i64)
                .bind(step.wait.0)
                .fetch_one(&mut *tx)
                .await?;
            let step_id = i64_(&row, "id")?;
            for (tpos, t) in step.targets.iter().enumerate() {
                let (person, schedule) = match *t {
                    Target::Person(p) => (Some(p.0), None),
                    Target::Schedule(s) => (None, Some(s.0)),
                };
                sqlx::query("INSERT INTO escalation_targets (org_id, step_id, position, person_id, schedule_id) VALUES ($1, $2, $3, $4, $5)")
                    .bind(org.0)
                    .bind(step_id)
                    .bind(tpos as i64)
                    .bind(person)
                    .bind(schedule)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(PolicyId(id))
    }

    pub async fn policy(&self, org: OrgId, id: PolicyId) -> Result<EscalationPolicy> {
        let row = sqlx::query("SELECT name, repeat_count FROM escalation_policies WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let steps = sqlx::query("SELECT id, wait_ms FROM escalation_steps WHERE org_id = $1 AND policy_id = $2 ORDER BY position")
            .bind(org.0)
            .bind(id.0)
            .fetch_all(self.pool())
            .await?;
        let targets = sqlx::query(
            "SELECT t.step_id, t.person_id, t.schedule_id FROM escalation_targets t \
             JOIN escalation_steps s ON s.id = t.step_id \
             WHERE t.org_id = $1 AND s.policy_id = $2 ORDER BY t.step_id, t.position",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        let mut by_step: HashMap<i64, Vec<Target>> = HashMap::new();
        for t in &targets {
            let target = match (opt_i64(t, "person_id")?, opt_i64(t, "schedule_id")?) {
                (Some(p), None) => Target::Person(PersonId(p)),
                (None, Some(s)) => Target::Schedule(ScheduleId(s)),
                _ => return Err(corrupt("escalation_targets", "needs exactly one of person_id, schedule_id")),
            };
            by_step.entry(i64_(t, "step_id")?).or_default().push(target);
        }
        let steps = steps
            .iter()
            .map(|s| {
                Ok(Step {
                    targets: by_step.remove(&i64_(s, "id")?).unwrap_or_default(),
                    wait: Millis(i64_(s, "wait_ms")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EscalationPolicy { id, org, name: string(&row, "name")?, steps, repeat: u32_(&row, "repeat_count")? })
    }

    pub async fn list_policies(&self, org: OrgId) -> Result<Vec<EscalationPolicy>> {
        let rows = sqlx::query("SELECT id FROM escalation_policies WHERE org_id = $1 ORDER BY id")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.policy(org, PolicyId(i64_(r, "id")?)).await?);
        }
        Ok(out)
    }

    /// Everything an `escalation::Engine` for `policy` needs: the schedules it targets, every
    /// person's contact plan and the managers.
    pub async fn escalation_directory(&self, org: OrgId, policy: &EscalationPolicy) -> Result<Directory> {
        let mut schedules = Vec::new();
        for step in &policy.steps {
            for t in &step.targets {
                if let Target::Schedule(s) = *t {
                    if !schedules.iter().any(|x: &crate::schedule::Schedule| x.id == s) {
                        schedules.push(self.schedule(org, s).await?);
                    }
                }
            }
        }
        let people = self.list_people(org).await?.iter().map(|p| p.contact_plan()).collect();
        Ok(Directory { schedules, people, managers: self.managers(org).await? })
    }
}
