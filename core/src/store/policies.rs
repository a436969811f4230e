//! Escalation policies, and the `Directory` snapshot the engine runs on.

use super::rows::{corrupt, i64_, opt_i64, string, u32_};
use super::{one_row, Result, Store, StoreError};
use crate::escalation::{Directory, EscalationPolicy, NewPolicy, Step, Target};
use crate::ids::{OrgId, PersonId, PolicyId, ScheduleId};
use crate::timestamp::{Millis, Timestamp};
use crate::validation::ValidationError;
use std::collections::HashMap;

impl Store {
    /// Validates and stores a policy (targets must belong to the organization), all or nothing.
    pub async fn create_policy(&self, org: OrgId, new: &NewPolicy, now: Timestamp) -> Result<PolicyId> {
        self.check_policy(org, new).await?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("INSERT INTO escalation_policies (org_id, name, repeat_count, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(org.0)
            .bind(new.name.trim())
            .bind(i64::from(new.repeat))
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        let id = i64_(&row, "id")?;
        insert_steps(&mut tx, org, id, new).await?;
        tx.commit().await?;
        Ok(PolicyId(id))
    }

    /// Replaces a policy's name, repeat count and steps, all or nothing.
    pub async fn update_policy(&self, org: OrgId, id: PolicyId, new: &NewPolicy) -> Result<()> {
        self.check_policy(org, new).await?;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE escalation_policies SET name = $1, repeat_count = $2 WHERE org_id = $3 AND id = $4")
            .bind(new.name.trim())
            .bind(i64::from(new.repeat))
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        one_row(&done, id)?;
        sqlx::query("DELETE FROM escalation_targets WHERE org_id = $1 AND step_id IN (SELECT id FROM escalation_steps WHERE org_id = $1 AND policy_id = $2)")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM escalation_steps WHERE org_id = $1 AND policy_id = $2")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        insert_steps(&mut tx, org, id.0, new).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (or re-enables) a policy.
    pub async fn set_policy_disabled(&self, org: OrgId, id: PolicyId, disabled: bool, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE escalation_policies SET disabled_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(disabled.then_some(now.0))
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)
    }

    /// Validation plus: every target belongs to the organization.
    async fn check_policy(&self, org: OrgId, new: &NewPolicy) -> Result<()> {
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

        Ok(())
    }

    pub async fn policy(&self, org: OrgId, id: PolicyId) -> Result<EscalationPolicy> {
        let row = sqlx::query("SELECT name, repeat_count, disabled_at FROM escalation_policies WHERE org_id = $1 AND id = $2")
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
        Ok(EscalationPolicy {
            id,
            org,
            name: string(&row, "name")?,
            steps,
            repeat: u32_(&row, "repeat_count")?,
            disabled: opt_i64(&row, "disabled_at")?.is_some(),
        })
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
        // Disabled people are left out: the engine skips targets it has no plan for.
        let people = self.list_people(org).await?.iter().filter(|p| !p.disabled).map(|p| p.contact_plan()).collect();
        Ok(Directory { schedules, people, managers: self.managers(org).await? })
    }
}

/// Writes a policy's steps and their targets, in order.
async fn insert_steps(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, id: i64, new: &NewPolicy) -> Result<()> {
        for (pos, step) in new.steps.iter().enumerate() {
            let row = sqlx::query("INSERT INTO escalation_steps (org_id, policy_id, position, wait_ms) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(org.0)
                .bind(id)
                .bind(pos as i64)
                .bind(step.wait.0)
                .fetch_one(&mut **tx)
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
                    .execute(&mut **tx)
                    .await?;
            }
        }
    Ok(())
}
