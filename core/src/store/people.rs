//! People (with their contacts and notification rules) and teams.

use super::rows::{corrupt, i64_, opt_string, string, ts};
use super::{Result, Store, StoreError};
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
    /// Validates and stores a person with contacts and rules, all or nothing.
    pub async fn add_person(&self, org: OrgId, new: &NewPerson, now: Timestamp) -> Result<PersonId> {
        let p = new.validate()?;
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
        let rows = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND role = 'manager' ORDER BY id")
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
        let candidate = NewPerson {
            name: person.name.clone(),
            email: person.email.clone(),
            role: Some(person.role),
            phones: person.phones().map(|p| p.to_string()).collect(),
            sip_uris: person
                .contacts
                .iter()
                .filter_map(|c| match c {
                    Contact::Sip(u) => Some(u.to_string()),
                    Contact::Phone(_) => None,
                })
                .collect(),
            time_zone: person.time_zone.name().to_string(),
            notification_rules: rules.to_vec(),
        };
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
            "SELECT id, name, email, role, time_zone, created_at FROM people WHERE org_id = $1{people_filter} ORDER BY name, id"
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
