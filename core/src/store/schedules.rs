//! Schedules: layers with their rotation members, and overrides.

use super::rows::{corrupt, i64_, string, ts, u32_};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{OrgId, OverrideId, PersonId, ScheduleId};
use crate::schedule::{Layer, NewSchedule, Override, Rotation, Schedule, ShiftLength};
use crate::timestamp::Timestamp;
use chrono::NaiveDateTime;
use std::collections::HashMap;

/// How a layer's wall-clock start is stored.
const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

impl Store {
    /// Validates and stores a schedule with its layers, all or nothing.
    pub async fn create_schedule(&self, org: OrgId, new: &NewSchedule, now: Timestamp) -> Result<ScheduleId> {
        let tz = new.validate()?;
        for (i, layer) in new.layers.iter().enumerate() {
            self.check_people_exist(org, &layer.rotation.members, &format!("layers[{i}].members")).await?;
        }
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("INSERT INTO schedules (org_id, name, time_zone, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(org.0)
            .bind(new.name.trim())
            .bind(tz.name())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        let id = i64_(&row, "id")?;
        insert_layers(&mut tx, org, id, &new.layers).await?;
        tx.commit().await?;
        Ok(ScheduleId(id))
    }

    /// Replaces a schedule's name, time zone and layers (rotations), all or nothing. Overrides
    /// are kept.
    pub async fn update_schedule(&self, org: OrgId, id: ScheduleId, new: &NewSchedule) -> Result<()> {
        let tz = new.validate()?;
        for (i, layer) in new.layers.iter().enumerate() {
            self.check_people_exist(org, &layer.rotation.members, &format!("layers[{i}].members")).await?;
        }
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE schedules SET name = $1, time_zone = $2 WHERE org_id = $3 AND id = $4")
            .bind(new.name.trim())
            .bind(tz.name())
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        one_row(&done, id)?;
        // Members first: layer_members references layers, and not every backend cascades the
        // same way inside one transaction.
        sqlx::query("DELETE FROM layer_members WHERE org_id = $1 AND layer_id IN (SELECT id FROM schedule_layers WHERE org_id = $1 AND schedule_id = $2)")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM schedule_layers WHERE org_id = $1 AND schedule_id = $2")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        insert_layers(&mut tx, org, id.0, &new.layers).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn schedule(&self, org: OrgId, id: ScheduleId) -> Result<Schedule> {
        let row = sqlx::query("SELECT id, name, time_zone FROM schedules WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let tz_name = string(&row, "time_zone")?;
        let time_zone = tz_name.parse().map_err(|_| corrupt("schedules.time_zone", &tz_name))?;

        let layer_rows = sqlx::query(
            "SELECT id, name, shift_unit, shift_count, start_local FROM schedule_layers \
             WHERE org_id = $1 AND schedule_id = $2 ORDER BY position",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        let member_rows = sqlx::query(
            "SELECT m.layer_id, m.person_id FROM layer_members m JOIN schedule_layers l ON l.id = m.layer_id \
             WHERE m.org_id = $1 AND l.schedule_id = $2 ORDER BY m.layer_id, m.position",
        )
        .bind(org.0)
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        let mut members: HashMap<i64, Vec<PersonId>> = HashMap::new();
        for m in &member_rows {
            members.entry(i64_(m, "layer_id")?).or_default().push(PersonId(i64_(m, "person_id")?));
        }
        let mut layers = Vec::with_capacity(layer_rows.len());
        for l in &layer_rows {
            let unit = string(l, "shift_unit")?;
            let shift_length = ShiftLength::from_parts(&unit, u32_(l, "shift_count")?)
                .ok_or_else(|| corrupt("schedule_layers.shift_unit", &unit))?;
            let start = string(l, "start_local")?;
            let start = NaiveDateTime::parse_from_str(&start, LOCAL_FORMAT)
                .map_err(|_| corrupt("schedule_layers.start_local", &start))?;
            layers.push(Layer {
                name: string(l, "name")?,
                rotation: Rotation {
                    members: members.remove(&i64_(l, "id")?).unwrap_or_default(),
                    shift_length,
                    start_date: start.date(),
                    handoff_time: start.time(),
                },
            });
        }
        Ok(Schedule {
            id,
            org,
            name: string(&row, "name")?,
            time_zone,
            layers,
            overrides: self.overrides(org, id).await?,
        })
    }

    pub async fn list_schedules(&self, org: OrgId) -> Result<Vec<Schedule>> {
        let rows = sqlx::query("SELECT id FROM schedules WHERE org_id = $1 ORDER BY name, id")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.schedule(org, ScheduleId(i64_(r, "id")?)).await?);
        }
        Ok(out)
    }

    async fn overrides(&self, org: OrgId, schedule: ScheduleId) -> Result<Vec<Override>> {
        let rows = sqlx::query(
            "SELECT id, person_id, starts_at, ends_at FROM schedule_overrides \
             WHERE org_id = $1 AND schedule_id = $2 ORDER BY starts_at",
        )
        .bind(org.0)
        .bind(schedule.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Override {
                    id: Some(OverrideId(i64_(r, "id")?)),
                    person: PersonId(i64_(r, "person_id")?),
                    start: ts(r, "starts_at")?,
                    end: ts(r, "ends_at")?,
                })
            })
            .collect()
    }

    /// Adds "person covers from..to". Rejected (nothing written) if it overlaps another
    /// override of the schedule or names someone outside the organization.
    pub async fn add_override(&self, org: OrgId, schedule: ScheduleId, o: &Override, now: Timestamp) -> Result<OverrideId> {
        o.validate()?;
        self.check_people_exist(org, &[o.person], "override.person").await?;
        let mut tx = self.pool().begin().await?;
        let id = insert_override(&mut tx, org, schedule, o, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Whether accepted shift swaps of the schedule wait for a manager (the default) or apply
    /// at once.
    pub async fn swaps_need_approval(&self, org: OrgId, schedule: ScheduleId) -> Result<bool> {
        let row = sqlx::query("SELECT swaps_need_approval FROM schedules WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(schedule.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(schedule.to_string()))?;
        Ok(i64_(&row, "swaps_need_approval")? != 0)
    }

    pub async fn set_swaps_need_approval(&self, org: OrgId, schedule: ScheduleId, need: bool) -> Result<()> {
        let done = sqlx::query("UPDATE schedules SET swaps_need_approval = $1 WHERE org_id = $2 AND id = $3")
            .bind(i64::from(need))
            .bind(org.0)
            .bind(schedule.0)
            .execute(self.pool())
            .await?;
        one_row(&done, schedule)
    }

    pub async fn remove_override(&self, org: OrgId, id: OverrideId) -> Result<()> {
        let done = sqlx::query("DELETE FROM schedule_overrides WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)
    }
}

/// Writes override `o` (already validated, its person checked) in `tx`; refused if it overlaps
/// another override of the schedule. On an error the caller drops `tx`, which rolls it back.
pub(super) async fn insert_override(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, schedule: ScheduleId, o: &Override, now: Timestamp) -> Result<OverrideId> {
    // Write first (SQLite takes the write lock at the first write, so the overlap check
    // below sees every committed override and no other writer can slip in before commit).
    let row = sqlx::query(
        "INSERT INTO schedule_overrides (org_id, schedule_id, person_id, starts_at, ends_at, created_at) \
         SELECT $1, id, $3, $4, $5, $6 FROM schedules WHERE org_id = $1 AND id = $2 RETURNING id",
    )
    .bind(org.0)
    .bind(schedule.0)
    .bind(o.person.0)
    .bind(o.start.0)
    .bind(o.end.0)
    .bind(now.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| StoreError::NotFound(schedule.to_string()))?;
    let id = i64_(&row, "id")?;
    let clash = sqlx::query(
        "SELECT person_id, starts_at, ends_at FROM schedule_overrides \
         WHERE org_id = $1 AND schedule_id = $2 AND id <> $3 AND starts_at < $4 AND $5 < ends_at",
    )
    .bind(org.0)
    .bind(schedule.0)
    .bind(id)
    .bind(o.end.0)
    .bind(o.start.0)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(c) = clash {
        let other = Override::new(PersonId(i64_(&c, "person_id")?), ts(&c, "starts_at")?, ts(&c, "ends_at")?);
        // Reuse the pure check for the message.
        return Err(match o.validate_against(&[other]) {
            Err(e) => e.into(),
            Ok(()) => StoreError::Conflict("an overlapping override".into()),
        });
    }
    Ok(OverrideId(id))
}

/// Writes `layers` (in order) with their members for schedule `id`.
async fn insert_layers(tx: &mut sqlx::Transaction<'_, sqlx::Any>, org: OrgId, id: i64, layers: &[Layer]) -> Result<()> {
        for (pos, layer) in layers.iter().enumerate() {
            let r = &layer.rotation;
            let row = sqlx::query(
                "INSERT INTO schedule_layers (org_id, schedule_id, position, name, shift_unit, shift_count, start_local) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(org.0)
            .bind(id)
            .bind(pos as i64)
            .bind(layer.name.trim())
            .bind(r.shift_length.unit_str())
            .bind(i64::from(r.shift_length.count()))
            .bind(r.start_local().format(LOCAL_FORMAT).to_string())
            .fetch_one(&mut **tx)
            .await?;
            let layer_id = i64_(&row, "id")?;
            for (mpos, m) in r.members.iter().enumerate() {
                sqlx::query("INSERT INTO layer_members (org_id, layer_id, position, person_id) VALUES ($1, $2, $3, $4)")
                    .bind(org.0)
                    .bind(layer_id)
                    .bind(mpos as i64)
                    .bind(m.0)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    Ok(())
}
