//! People (with their contacts and notification rules) and teams.

use super::rows::{corrupt, i64_, opt_string, string, ts};
use super::{one_row, Result, Store, StoreError};
use crate::ids::{OrgId, PersonId, TeamId};
use crate::person::{Channel, NewPerson, NotificationRule, Person, Role};
use crate::phone::Contact;
use crate::timestamp::{Millis, Timestamp};
use crate::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub org: OrgId,
    pub name: String,
    pub members: Vec<PersonId>,
}

impl Store {
    /// Phone numbers the dial plan refuses are not saved (issue #15 item 4: a `+882` contact would be
    /// dialled with the trunk's credentials); the error names the field and the rule.
    fn check_dial_plan(&self, contacts: &[Contact]) -> Result<()> {
        let phones = contacts.iter().filter_map(|c| match c {
            Contact::Phone(p) => Some(p),
            Contact::Sip(_) => None,
        });
        for (i, phone) in phones.enumerate() {
            if let Err(refusal) = self.dial_plan().check(phone) {
                return Err(ValidationError::new(format!("phones[{i}]"), refusal.to_string()).into());
            }
        }
        Ok(())
    }

    /// Validates and stores a person with contacts and rules, all or nothing.
    pub async fn add_person(&self, org: OrgId, new: &NewPerson, now: Timestamp) -> Result<PersonId> {
        let p = new.validate()?;
        self.check_dial_plan(&p.contacts)?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "INSERT INTO people (org_id, name, email, role, time_zone, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(org.0)
        .bind(&p.name)
        .bind(&p.email)
        .bind(p.role.as_str())
        .bind(p.time_zone.name())
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("person with e-mail {:?}", p.email.as_deref().unwrap_or(""))),
            other => other,
        })?;
        let id = i64_(&row, "id")?;
        for (i, c) in p.contacts.iter().enumerate() {
            sqlx::query("INSERT INTO contact_methods (org_id, person_id, position, kind, address) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.0)
                .bind(id)
                .bind(i as i64)
                .bind(c.kind_str())
                .bind(c.address())
                .execute(&mut *tx)
                .await?;
        }
        for (i, r) in p.notification_rules.iter().enumerate() {
            sqlx::query("INSERT INTO notification_rules (org_id, person_id, position, channel, delay_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.0)
                .bind(id)
                .bind(i as i64)
                .bind(r.channel.as_str())
                .bind(r.delay.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(PersonId(id))
    }

    pub async fn person(&self, org: OrgId, id: PersonId) -> Result<Person> {
        self.load_people(org, Some(id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// Everyone in the organization, by name.
    pub async fn list_people(&self, org: OrgId) -> Result<Vec<Person>> {
        self.load_people(org, None).await
    }

    /// The organization's managers, oldest first: the escalation last resort.
    pub async fn managers(&self, org: OrgId) -> Result<Vec<PersonId>> {
        let rows = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND role = 'manager' AND disabled_at IS NULL ORDER BY id")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(PersonId(i64_(r, "id")?))).collect()
    }

    pub async fn person_by_email(&self, org: OrgId, email: &str) -> Result<Option<PersonId>> {
        let row = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND email = $2")
            .bind(org.0)
            .bind(email.trim().to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(PersonId(i64_(&r, "id")?))).transpose()
    }

    /// Replaces a person's notification rules (validated against their contacts).
    pub async fn set_notification_rules(&self, org: OrgId, id: PersonId, rules: &[NotificationRule]) -> Result<()> {
        let person = self.person(org, id).await?;
        // Re-run the same validation a new person gets, so the rules are checked against the
        // contacts exactly as on creation.
        let candidate = NewPerson { notification_rules: rules.to_vec(), ..person.to_new() };
        let valid = candidate.validate()?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM notification_rules WHERE org_id = $1 AND person_id = $2")
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        for (i, r) in valid.notification_rules.iter().enumerate() {
            sqlx::query("INSERT INTO notification_rules (org_id, person_id, position, channel, delay_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.0)
                .bind(id.0)
                .bind(i as i64)
                .bind(r.channel.as_str())
                .bind(r.delay.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a person's details, contacts and rules (validated like a new person), all or
    /// nothing. A linked login keeps its own e-mail.
    pub async fn update_person(&self, org: OrgId, id: PersonId, new: &NewPerson) -> Result<()> {
        let p = new.validate()?;
        self.check_dial_plan(&p.contacts)?;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("UPDATE people SET name = $1, email = $2, role = $3, time_zone = $4 WHERE org_id = $5 AND id = $6")
            .bind(&p.name)
            .bind(&p.email)
            .bind(p.role.as_str())
            .bind(p.time_zone.name())
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("person with e-mail {:?}", p.email.as_deref().unwrap_or(""))),
                other => other,
            })?;
        one_row(&done, id)?;
        for table in ["contact_methods", "notification_rules"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE org_id = $1 AND person_id = $2"))
                .bind(org.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        for (i, c) in p.contacts.iter().enumerate() {
            sqlx::query("INSERT INTO contact_methods (org_id, person_id, position, kind, address) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.0)
                .bind(id.0)
                .bind(i as i64)
                .bind(c.kind_str())
                .bind(c.address())
                .execute(&mut *tx)
                .await?;
        }
        for (i, r) in p.notification_rules.iter().enumerate() {
            sqlx::query("INSERT INTO notification_rules (org_id, person_id, position, channel, delay_ms) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.0)
                .bind(id.0)
                .bind(i as i64)
                .bind(r.channel.as_str())
                .bind(r.delay.0)
                .execute(&mut *tx)
                .await?;
        }
        // Keep the login's role in step with the person's: the role is a property of the person.
        sqlx::query("UPDATE users SET role = $1 WHERE org_id = $2 AND person_id = $3")
            .bind(p.role.as_str())
            .bind(org.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (or re-enables) a person. A disabled person is not paged; their login, if any,
    /// is disabled with them.
    pub async fn set_person_disabled(&self, org: OrgId, id: PersonId, disabled: bool, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE people SET disabled_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(disabled.then_some(now.0))
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)?;
        if let Some(user) = self.user_for_person(org, id).await? {
            self.set_user_disabled(org, user.id, disabled, now).await?;
        }
        Ok(())
    }

    /// The secret of the person's private calendar feed, created on first use.
    pub async fn calendar_token(&self, org: OrgId, id: PersonId) -> Result<String> {
        let row = sqlx::query("SELECT calendar_token FROM people WHERE org_id = $1 AND id = $2")
            .bind(org.0)
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        if let Some(t) = opt_string(&row, "calendar_token")? {
            return Ok(t);
        }
        self.reset_calendar_token(org, id).await
    }

    /// Replaces the calendar feed secret (the old URL stops working).
    pub async fn reset_calendar_token(&self, org: OrgId, id: PersonId) -> Result<String> {
        let token = crate::secret::new_token();
        let done = sqlx::query("UPDATE people SET calendar_token = $1 WHERE org_id = $2 AND id = $3")
            .bind(&token)
            .bind(org.0)
            .bind(id.0)
            .execute(self.pool())
            .await?;
        one_row(&done, id)?;
        Ok(token)
    }

    /// Whose calendar feed a secret opens.
    pub async fn person_by_calendar_token(&self, token: &str) -> Result<Option<(OrgId, PersonId)>> {
        if token.len() != 64 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT org_id, id FROM people WHERE calendar_token = $1 AND disabled_at IS NULL")
            .bind(token)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok((OrgId(i64_(&r, "org_id")?), PersonId(i64_(&r, "id")?)))).transpose()
    }

    /// Fails with a validation error naming `field` unless every id is a person of `org`.
    pub(crate) async fn check_people_exist(&self, org: OrgId, ids: &[PersonId], field: &str) -> Result<()> {
        let rows = sqlx::query("SELECT id FROM people WHERE org_id = $1")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let known: Vec<i64> = rows.iter().map(|r| i64_(r, "id")).collect::<Result<_>>()?;
        if let Some(missing) = ids.iter().find(|id| !known.contains(&id.0)) {
            return Err(ValidationError::new(field, format!("{missing} is not a person of this organization")).into());
        }
        Ok(())
    }

    async fn load_people(&self, org: OrgId, only: Option<PersonId>) -> Result<Vec<Person>> {
        // Three queries for the whole org rather than three per person; `only` adds `$2`.
        let filter = if only.is_some() { " AND person_id = $2" } else { "" };
        let people_filter = if only.is_some() { " AND id = $2" } else { "" };
        let fetch = |sql: String| async move {
            let mut q = sqlx::query(&sql).bind(org.0);
            if let Some(p) = only {
                q = q.bind(p.0);
            }
            q.fetch_all(self.pool()).await
        };
        let people = fetch(format!(
            "SELECT id, name, email, role, time_zone, created_at, disabled_at FROM people WHERE org_id = $1{people_filter} ORDER BY name, id"
        ))
        .await?;
        let contacts = fetch(format!(
            "SELECT person_id, kind, address FROM contact_methods WHERE org_id = $1{filter} ORDER BY person_id, position"
        ))
        .await?;
        let rules = fetch(format!(
            "SELECT person_id, channel, delay_ms FROM notification_rules WHERE org_id = $1{filter} ORDER BY person_id, position"
        ))
        .await?;

        let mut contacts_by: HashMap<i64, Vec<Contact>> = HashMap::new();
        for r in &contacts {
            let kind = string(r, "kind")?;
            let address = string(r, "address")?;
            let c = match kind.as_str() {
                "phone" => Contact::Phone(address.parse().map_err(|e| corrupt("contact_methods.address", e))?),
                "sip" => Contact::Sip(address.parse().map_err(|e| corrupt("contact_methods.address", e))?),
                other => return Err(corrupt("contact_methods.kind", other)),
            };
            contacts_by.entry(i64_(r, "person_id")?).or_default().push(c);
        }
        let mut rules_by: HashMap<i64, Vec<NotificationRule>> = HashMap::new();
        for r in &rules {
            let ch = string(r, "channel")?;
            let channel: Channel = ch.parse().map_err(|_| corrupt("notification_rules.channel", &ch))?;
            rules_by
                .entry(i64_(r, "person_id")?)
                .or_default()
                .push(NotificationRule::new(channel, Millis(i64_(r, "delay_ms")?)));
        }
        people
            .iter()
            .map(|r| {
                let id = i64_(r, "id")?;
                let role = string(r, "role")?;
                let tz = string(r, "time_zone")?;
                let _created = ts(r, "created_at")?;
                Ok(Person {
                    id: PersonId(id),
                    org,
                    name: string(r, "name")?,
                    email: opt_string(r, "email")?,
                    role: role.parse::<Role>().map_err(|_| corrupt("people.role", &role))?,
                    contacts: contacts_by.remove(&id).unwrap_or_default(),
                    time_zone: tz.parse().map_err(|_| corrupt("people.time_zone", &tz))?,
                    notification_rules: rules_by.remove(&id).unwrap_or_default(),
                    disabled: super::rows::opt_i64(r, "disabled_at")?.is_some(),
                })
            })
            .collect()
    }

    // ---- teams ----

    pub async fn create_team(&self, org: OrgId, name: &str, members: &[PersonId], now: Timestamp) -> Result<TeamId> {
        let name = validation::non_blank("name", name)?;
        self.check_people_exist(org, members, "members").await?;
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query("INSERT INTO teams (org_id, name, created_at) VALUES ($1, $2, $3) RETURNING id")
            .bind(org.0)
            .bind(&name)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("team {name:?}")),
                other => other,
            })?;
        let id = i64_(&row, "id")?;
        let mut seen = Vec::new();
        for m in members {
            if seen.contains(m) {
                continue; // a person is in a team once
            }
            seen.push(*m);
            sqlx::query("INSERT INTO team_members (org_id, team_id, person_id) VALUES ($1, $2, $3)")
                .bind(org.0)
                .bind(id)
                .bind(m.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(TeamId(id))
    }

    pub async fn list_teams(&self, org: OrgId) -> Result<Vec<Team>> {
        let teams = sqlx::query("SELECT id, name FROM teams WHERE org_id = $1 ORDER BY name")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let members = sqlx::query("SELECT team_id, person_id FROM team_members WHERE org_id = $1 ORDER BY person_id")
            .bind(org.0)
            .fetch_all(self.pool())
            .await?;
        let mut by: HashMap<i64, Vec<PersonId>> = HashMap::new();
        for m in &members {
            by.entry(m.try_get::<i64, _>("team_id")?).or_default().push(PersonId(i64_(m, "person_id")?));
        }
        teams
            .iter()
            .map(|t| {
                let id = i64_(t, "id")?;
                Ok(Team { id: TeamId(id), org, name: string(t, "name")?, members: by.remove(&id).unwrap_or_default() })
            })
            .collect()
    }
}
