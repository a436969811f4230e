//! The SIP redirect target (issue 7 item 4): an INVITE to `oncall-<schedule>@` is answered
//! `302 Moved Temporarily` with the on-call people's phones as Contacts, best first (q = 1.0, then
//! lower), so any PBX can forward its after-hours line to OnCall without OnCall carrying the media.
//! `oncall-<schedule>-bridge@` is an ordinary call to the IVR instead (OnCall carries it).
//!
//! The order is the schedule's (`oncall_core::schedule::on_call_order`: whoever is on call, then
//! the backups of lower layers); for each person, their phones registered with OnCall first, then
//! their contacts in their own order (a SIP URI as is, a phone number as `sip:<e164>@<host>` where
//! the host is the first `[[trunks]]` entry's domain, else the asking PBX itself). Disabled people
//! are left out. Unknown schedule → 404, nobody on call → 480. A registering trunk's own username
//! (`oncall-4471`, say) is never taken for a schedule: the provider's calls to it stay ordinary calls.
//!
//! Only trusted sources get an answer beyond 403 — a trunk's `allowed_sources`,
//! `[redirect] allowed_sources`, or a phone registered with OnCall (its REGISTER was
//! authenticated) — because a 302 lists employees' numbers, and a 404/403 difference would let a
//! scanner probe schedule names. Schedules and people come from a snapshot the settings watch re-reads every few
//! seconds (no database query per INVITE, so a flood of INVITEs costs nothing). A redirect opens
//! no request and writes no call-log row; it is logged and counted on `/metrics`.
//!
//! Issue 17: the schedule is looked up in the organization the call's number routes to (`calls::numbers`:
//! the Request-URI `oncall-<schedule>@host` or `oncall-<schedule>` if an organization owns it, else the To
//! user, which a PBX forwarding its line keeps as its own DID; with no numbers configured, the first
//! organization). A call no organization owns finds no schedule (404 to a trusted source, 403 to others), and a
//! phone registered in one organization is trusted for that organization's schedules only.
//!
//! A request opened by a `-bridge` call is paged with the escalation policy that pages that schedule
//! soonest ([`choose_policy`], read from the call's logged `called` URI by `oncall_paging::escalations`). When no
//! enabled policy pages it, the organization's first enabled policy runs, with a warning: an
//! escalation always runs under a stored policy (its durable state names it), so none is made up here.

use crate::config::{RedirectConfig, SourceNet, TrunkConfig};
use crate::phones::RegistrarHandle;
use crate::settings_watch::Watched;
use oncall_core::escalation::EscalationPolicy;
use oncall_core::prometheus_text::{Kind, PrometheusText};
use oncall_core::schedule::{self, on_call_order, Schedule};
use oncall_core::{Contact, OrgId, Person, PersonId, Store, Timestamp};
use oncall_sip::message::uri::{unescape, Uri};
use oncall_sip::ua::redirect::{QValue, RedirectContact};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::future::Future;
use std::pin::Pin;

/// The Request-URI user prefix (matched in any case).
const PREFIX: &str = "oncall-";
const BRIDGE_SUFFIX: &str = "-bridge";

/// The user part of a SIP Request-URI, %-escapes decoded.
fn request_user(request_uri: &str) -> Option<String> {
    let Ok(Uri::Sip(uri)) = Uri::parse(request_uri) else {
        return None;
    };
    Some(unescape(uri.user.as_deref()?))
}

/// The schedule key of a Request-URI whose user is `oncall-<key>` (any case, %-escapes decoded);
/// `None` for any other Request-URI.
pub fn target_key(request_uri: &str) -> Option<String> {
    let user = request_user(request_uri)?;
    let head = user.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let key = &user[PREFIX.len()..];
    (!key.trim().is_empty()).then(|| key.to_string())
}

/// What `oncall-<key>` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `oncall-<schedule>`: answer with a redirect.
    Redirect(&'a Schedule),
    /// `oncall-<schedule>-bridge`: an IVR call about that schedule.
    Bridge(&'a Schedule),
    Unknown,
}

/// A schedule whose own slug ends in `-bridge` stays a redirect target: the whole key is tried first.
pub fn resolve<'a>(schedules: &'a [Schedule], key: &str) -> Target<'a> {
    if let Some(s) = schedule::on_call_order::find(schedules, key) {
        return Target::Redirect(s);
    }
    let stem = key
        .len()
        .checked_sub(BRIDGE_SUFFIX.len())
        .and_then(|n| key.get(..n).filter(|_| key[n..].eq_ignore_ascii_case(BRIDGE_SUFFIX)));
    match stem.and_then(|stem| schedule::on_call_order::find(schedules, stem)) {
        Some(s) => Target::Bridge(s),
        None => Target::Unknown,
    }
}

/// The schedule a call dialled as `oncall-<schedule>-bridge` is about; `None` for any other number
/// (`oncall-<schedule>` included: it is answered with a redirect, never paged).
pub fn bridge_schedule<'a>(schedules: &'a [Schedule], called_uri: &str) -> Option<&'a Schedule> {
    match resolve(schedules, &target_key(called_uri)?) {
        Target::Bridge(s) => Some(s),
        Target::Redirect(_) | Target::Unknown => None,
    }
}

/// Which escalation policy pages a request, and why.
#[derive(Debug, PartialEq, Eq)]
pub enum PolicyChoice<'a> {
    /// Not a bridge call: the organization's first enabled policy, as for every call.
    Default(&'a EscalationPolicy),
    /// Dialled as `oncall-<schedule>-bridge`: the enabled policy that pages the schedule soonest.
    Schedule {
        policy: &'a EscalationPolicy,
        schedule: &'a Schedule,
    },
    /// Dialled as `oncall-<schedule>-bridge`, but no enabled policy pages that schedule: the first
    /// enabled policy after all (a request that pages someone beats one that pages nobody).
    Fallback {
        policy: &'a EscalationPolicy,
        schedule: &'a Schedule,
    },
    /// No enabled policy with a step: nobody can be paged.
    Nothing,
}

impl<'a> PolicyChoice<'a> {
    pub fn policy(&self) -> Option<&'a EscalationPolicy> {
        match *self {
            PolicyChoice::Default(p)
            | PolicyChoice::Schedule { policy: p, .. }
            | PolicyChoice::Fallback { policy: p, .. } => Some(p),
            PolicyChoice::Nothing => None,
        }
    }
}

/// The policy for a request whose call was dialled to `called_uri` (the call log's `called`).
/// For `oncall-<schedule>-bridge`: among the enabled policies that page the schedule, the one
/// whose earliest such step comes first (a policy paging it at step 1 beats the default policy
/// paging it as a last resort at step 3); ties go to the first in `policies` (by id).
pub fn choose_policy<'a>(
    called_uri: &str,
    schedules: &'a [Schedule],
    policies: &'a [EscalationPolicy],
) -> PolicyChoice<'a> {
    let usable = policies.iter().filter(|p| p.can_start());
    let Some(first) = usable.clone().next() else {
        return PolicyChoice::Nothing;
    };
    let Some(schedule) = bridge_schedule(schedules, called_uri) else {
        return PolicyChoice::Default(first);
    };
    // `min_by_key` keeps the first of equal keys.
    match usable
        .filter_map(|p| p.first_step_paging(schedule.id).map(|i| (i, p)))
        .min_by_key(|(i, _)| *i)
    {
        Some((_, policy)) => PolicyChoice::Schedule { policy, schedule },
        None => PolicyChoice::Fallback {
            policy: first,
            schedule,
        },
    }
}

/// The Contacts of the 302: for each person in `order` (skipping unknown and disabled people), their
/// registered phones, then their own contacts; duplicates once; at most `max`; q from 1.0 down in
/// steps of 1/`max`, so every Contact has its own rank and the PBX tries them one after the other.
pub fn redirect_contacts(
    order: &[PersonId],
    people: &[Person],
    devices: impl Fn(PersonId) -> Vec<String>,
    phone_host: &str,
    max: usize,
) -> Vec<RedirectContact> {
    let mut uris: Vec<String> = Vec::new();
    for id in order {
        let Some(p) = people.iter().find(|p| p.id == *id && !p.disabled) else {
            continue;
        };
        let own = p.contacts.iter().map(|c| match c {
            Contact::Sip(u) => u.as_str().to_string(),
            Contact::Phone(e) => format!("sip:{}@{phone_host}", e.as_str()),
        });
        for uri in devices(p.id).into_iter().chain(own) {
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    let max = max.max(1);
    let step = 1000 / max as u16;
    uris.into_iter()
        .take(max)
        .enumerate()
        .map(|(i, uri)| RedirectContact {
            uri,
            q: QValue::from_thousandths(1000 - step * i as u16),
        })
        .collect()
}

/// What to answer an `oncall-...` INVITE.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// 302 with these Contacts.
    Redirect {
        schedule: String,
        contacts: Vec<RedirectContact>,
    },
    /// An IVR call about this schedule.
    Bridge { schedule: String },
    /// 403 (untrusted source), 404 (no such schedule), 480 (nobody on call).
    Reject(u16),
}

/// Counted on `/metrics` as `oncall_redirects_total{result=...}`.
#[derive(Default)]
pub struct RedirectCounters {
    redirected: AtomicU64,
    bridged: AtomicU64,
    forbidden: AtomicU64,
    not_found: AtomicU64,
    nobody: AtomicU64,
}

impl RedirectCounters {
    fn count(&self, d: &Decision) {
        let c = match d {
            Decision::Redirect { .. } => &self.redirected,
            Decision::Bridge { .. } => &self.bridged,
            Decision::Reject(403) => &self.forbidden,
            Decision::Reject(404) => &self.not_found,
            Decision::Reject(_) => &self.nobody,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// `oncall_redirects_total{result=...}` for `/metrics`.
    pub fn write_metrics(&self, out: &mut PrometheusText) {
        let mut f = out.family(
            "oncall_redirects_total",
            Kind::Counter,
            "INVITEs to oncall-<schedule>@ by outcome (redirected = 302, bridged = IVR call).",
        );
        for (result, n) in [
            ("redirected", &self.redirected),
            ("bridged", &self.bridged),
            ("forbidden", &self.forbidden),
            ("not_found", &self.not_found),
            ("nobody_on_call", &self.nobody),
        ] {
            f.sample(&[("result", result)], n.load(Ordering::Relaxed));
        }
    }
}

#[derive(Default)]
struct Snapshot {
    schedules: Vec<Schedule>,
    people: Vec<Person>,
}

type Snapshots = Arc<RwLock<HashMap<OrgId, Snapshot>>>;

/// Re-reads every enabled organization's schedules and people for the redirect target.
pub struct SnapshotWatch {
    target: Snapshots,
}

impl SnapshotWatch {
    async fn read(store: &Store) -> oncall_core::store::Result<HashMap<OrgId, Snapshot>> {
        let mut all = HashMap::new();
        for org in store.list_organizations().await?.into_iter().filter(|o| o.disabled_at.is_none()) {
            let snapshot = Snapshot { schedules: store.list_schedules(org.id).await?, people: store.list_people(org.id).await? };
            all.insert(org.id, snapshot);
        }
        Ok(all)
    }
}

impl Watched for SnapshotWatch {
    fn reload<'a>(&'a mut self, store: &'a Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            match SnapshotWatch::read(store).await {
                Ok(all) => *self.target.write().unwrap_or_else(|p| p.into_inner()) = all,
                Err(e) => tracing::warn!(error = %e, "redirect: cannot read schedules and people; keeping the previous ones"),
            }
        })
    }
}

/// Decides the answers; owned by the call controller, its snapshot kept fresh by a background task.
pub struct Redirector {
    snapshot: Snapshots,
    registrar: Option<RegistrarHandle>,
    trusted: Vec<SourceNet>,
    /// Registering trunks' usernames (lowercase): calls from a provider arrive for `sip:<username>@…`, which
    /// stays an ordinary call even when the username starts with `oncall-`.
    trunk_users: Vec<String>,
    /// The host of `sip:<e164>@host` Contacts; `None`: the asking PBX's address.
    phone_host: Option<String>,
    max_contacts: usize,
    pub counters: Arc<RedirectCounters>,
}

impl Redirector {
    /// `None` with `[redirect] enabled = false`. Its snapshot is empty until the settings watch fills it ([`Redirector::watched`]).
    pub fn start(redirect: &RedirectConfig, trunks: &[TrunkConfig], registrar: Option<RegistrarHandle>) -> Option<Redirector> {
        if !redirect.enabled {
            return None;
        }
        let mut trusted = redirect.sources();
        trusted.extend(trunks.iter().flat_map(|t| t.sources()));
        let phone_host = trunks.first().and_then(|t| {
            t.domain.clone().filter(|d| !d.is_empty()).or_else(|| {
                t.registrar_parts()
                    .ok()
                    .map(|(h, p, _)| if p == 5060 { h } else { format!("{h}:{p}") })
            })
        });
        let snapshot = Snapshots::default();
        tracing::info!(
            trusted_sources = trusted.len(),
            phone_host = phone_host.as_deref().unwrap_or("(the asking PBX)"),
            "redirect target oncall-<schedule>@ enabled"
        );
        let trunk_users = trunks
            .iter()
            .filter(|t| !t.username.is_empty())
            .map(|t| t.username.to_ascii_lowercase())
            .collect();
        Some(Redirector {
            snapshot,
            registrar,
            trusted,
            trunk_users,
            phone_host,
            max_contacts: redirect.max_contacts,
            counters: Arc::default(),
        })
    }

    /// The copy of schedules and people the settings watch keeps fresh.
    pub fn watched(&self) -> SnapshotWatch {
        SnapshotWatch { target: self.snapshot.clone() }
    }

    /// The answer to an INVITE for `request_uri` from `source` whose number routes to `org` (`None`: no
    /// organization owns it); `None` when it is not an `oncall-` target.
    pub fn decide(&self, request_uri: &str, source: SocketAddr, org: Option<OrgId>, now: Timestamp) -> Option<Decision> {
        if request_user(request_uri).is_some_and(|u| self.trunk_users.contains(&u.to_ascii_lowercase())) {
            return None;
        }
        let key = target_key(request_uri)?;
        let snaps = self.snapshot.read().unwrap_or_else(|p| p.into_inner());
        let nobody = Snapshot::default();
        let snap = org.and_then(|o| snaps.get(&o)).unwrap_or(&nobody);
        let decision = if !self.trusted(source, &snap.people) {
            tracing::warn!(%source, %key, "redirect asked by an untrusted source; 403");
            Decision::Reject(403)
        } else {
            match resolve(&snap.schedules, &key) {
                Target::Unknown => {
                    tracing::info!(%source, %key, org = ?org, "redirect: no such schedule in the organization the number routes to; 404");
                    Decision::Reject(404)
                }
                Target::Bridge(s) => Decision::Bridge {
                    schedule: s.name.clone(),
                },
                Target::Redirect(s) => {
                    let order: Vec<PersonId> = on_call_order(s, now).into_iter().map(|e| e.person).collect();
                    let host = self.phone_host.clone().unwrap_or_else(|| {
                        if source.port() == 5060 {
                            source.ip().to_string()
                        } else {
                            source.to_string()
                        }
                    });
                    let devices = |p| {
                        self.registrar
                            .as_ref()
                            .map(|r| r.registered_devices(p).into_iter().map(|d| d.contact).collect())
                            .unwrap_or_default()
                    };
                    let contacts = redirect_contacts(&order, &snap.people, devices, &host, self.max_contacts);
                    if contacts.is_empty() {
                        tracing::info!(%source, schedule = %s.name, people = order.len(), "redirect: nobody on call with a reachable contact; 480");
                        Decision::Reject(480)
                    } else {
                        let list: Vec<String> = contacts.iter().map(|c| c.header_value()).collect();
                        tracing::info!(%source, schedule = %s.name, contacts = %list.join(", "), "redirecting to the on-call people");
                        Decision::Redirect {
                            schedule: s.name.clone(),
                            contacts,
                        }
                    }
                }
            }
        };
        self.counters.count(&decision);
        Some(decision)
    }

    /// A configured source net, or the address a phone registered with OnCall sends from.
    fn trusted(&self, source: SocketAddr, people: &[Person]) -> bool {
        if self.trusted.iter().any(|n| n.contains(source.ip())) {
            return true;
        }
        let Some(r) = &self.registrar else { return false };
        people
            .iter()
            .any(|p| r.registered_devices(p.id).iter().any(|d| d.source == source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncall_core::schedule::{Layer, Rotation, ShiftLength};
    use oncall_core::{ScheduleId, SipUri, E164};

    #[test]
    fn the_schedule_key_comes_from_an_oncall_user_in_any_case() {
        assert_eq!(
            target_key("sip:oncall-maintenance@10.0.0.5").as_deref(),
            Some("maintenance")
        );
        assert_eq!(
            target_key("sip:OnCall-Maintenance-Bridge@10.0.0.5:5060;transport=udp").as_deref(),
            Some("Maintenance-Bridge")
        );
        assert_eq!(target_key("sip:oncall%2Dnight@h").as_deref(), Some("night"));
        assert_eq!(target_key("sip:oncall-3@h").as_deref(), Some("3"));
        assert_eq!(target_key("sip:oncall-@h"), None);
        assert_eq!(target_key("sip:100@h"), None);
        assert_eq!(target_key("sip:oncall@h"), None);
        assert_eq!(target_key("sip:h"), None);
        assert_eq!(target_key("tel:+441632960001"), None);
        assert_eq!(target_key("garbage"), None);
    }

    fn schedule(id: i64, name: &str, members: &[i64]) -> Schedule {
        let layer = Layer {
            name: "primary".into(),
            rotation: Rotation {
                members: members.iter().map(|&m| PersonId(m)).collect(),
                shift_length: ShiftLength::Days(1),
                start_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                handoff_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            },
        };
        Schedule {
            id: ScheduleId(id),
            org: OrgId(1),
            name: name.into(),
            time_zone: oncall_core::validation::parse_time_zone("tz", "UTC").unwrap(),
            layers: vec![layer],
            overrides: vec![],
        }
    }

    #[test]
    fn bridge_suffix_names_the_schedule_before_it_unless_a_schedule_has_the_whole_name() {
        let list = vec![schedule(1, "Maintenance", &[1]), schedule(2, "Network bridge", &[1])];
        assert_eq!(resolve(&list, "maintenance"), Target::Redirect(&list[0]));
        assert_eq!(resolve(&list, "MAINTENANCE-BRIDGE"), Target::Bridge(&list[0]));
        assert_eq!(resolve(&list, "network-bridge"), Target::Redirect(&list[1]));
        assert_eq!(resolve(&list, "network-bridge-bridge"), Target::Bridge(&list[1]));
        assert_eq!(resolve(&list, "2"), Target::Redirect(&list[1]));
        assert_eq!(resolve(&list, "payroll"), Target::Unknown);
        assert_eq!(resolve(&list, "-bridge"), Target::Unknown);
    }

    fn policy(id: i64, name: &str, steps: &[&[oncall_core::escalation::Target]], disabled: bool) -> EscalationPolicy {
        use oncall_core::escalation::Step;
        EscalationPolicy {
            id: oncall_core::PolicyId(id),
            org: OrgId(1),
            name: name.into(),
            steps: steps
                .iter()
                .map(|t| Step {
                    targets: t.to_vec(),
                    wait: oncall_core::Millis::minutes(5),
                })
                .collect(),
            repeat: 0,
            disabled,
        }
    }

    #[test]
    fn a_bridge_call_pages_with_the_policy_that_pages_its_schedule_soonest() {
        use oncall_core::escalation::Target::{Person as P, Schedule as S};
        let schedules = vec![
            schedule(1, "Night", &[1]),
            schedule(2, "Weekend", &[2]),
            schedule(3, "Managers", &[3]),
        ];
        let night = ScheduleId(1);
        let policies = vec![
            policy(1, "Broken", &[], false),
            // The default: Night first, Managers as a last resort.
            policy(2, "Main", &[&[S(night)], &[S(ScheduleId(3))]], false),
            policy(3, "Old weekend", &[&[S(ScheduleId(2))]], true),
            policy(4, "Managers first", &[&[P(PersonId(9)), S(ScheduleId(3))]], false),
            policy(5, "Managers too", &[&[S(ScheduleId(3))]], false),
        ];
        let name = |c: &PolicyChoice| c.policy().map(|p| p.name.clone());
        // Ordinary numbers, and a plain `oncall-<schedule>` (a redirect), page with the first enabled policy.
        for called in [
            "sip:100@oncall.example",
            "sip:oncall-night@oncall.example",
            "sip:oncall-payroll-bridge@h",
            "",
        ] {
            assert_eq!(
                choose_policy(called, &schedules, &policies),
                PolicyChoice::Default(&policies[1]),
                "{called}"
            );
        }
        assert_eq!(
            choose_policy("sip:OnCall-Night-Bridge@10.0.0.5;transport=udp", &schedules, &policies),
            PolicyChoice::Schedule {
                policy: &policies[1],
                schedule: &schedules[0]
            }
        );
        // Main pages Managers at step 2; "Managers first" at step 1 and before "Managers too" (by id).
        let c = choose_policy("sip:oncall-managers-bridge@h", &schedules, &policies);
        assert_eq!(name(&c).as_deref(), Some("Managers first"));
        assert!(matches!(c, PolicyChoice::Schedule { schedule, .. } if schedule.name == "Managers"));
        // The schedule's id works as in the redirect; its only policy is disabled: the default, flagged.
        assert_eq!(
            choose_policy("sip:oncall-2-bridge@h", &schedules, &policies),
            PolicyChoice::Fallback {
                policy: &policies[1],
                schedule: &schedules[1]
            }
        );
        // Nothing enabled with a step: nobody to page, bridge or not.
        let off = vec![
            policy(1, "Broken", &[], false),
            policy(3, "Old weekend", &[&[S(ScheduleId(2))]], true),
        ];
        assert_eq!(
            choose_policy("sip:oncall-weekend-bridge@h", &schedules, &off),
            PolicyChoice::Nothing
        );
        assert_eq!(choose_policy("sip:100@h", &schedules, &off), PolicyChoice::Nothing);
    }

    fn person(id: i64, contacts: Vec<Contact>, disabled: bool) -> Person {
        Person {
            id: PersonId(id),
            org: OrgId(1),
            name: format!("p{id}"),
            email: None,
            role: oncall_core::Role::Employee,
            contacts,
            time_zone: oncall_core::validation::parse_time_zone("tz", "UTC").unwrap(),
            notification_rules: vec![],
            disabled,
        }
    }

    fn phone(s: &str) -> Contact {
        Contact::Phone(s.parse::<E164>().unwrap())
    }

    #[test]
    fn contacts_follow_the_escalation_order_devices_first_with_falling_q_values() {
        let people = vec![
            person(
                1,
                vec![
                    phone("+441632960001"),
                    Contact::Sip("sip:erin@pbx.example.com".parse::<SipUri>().unwrap()),
                ],
                false,
            ),
            person(2, vec![phone("+441632960002")], false),
            person(3, vec![phone("+441632960003")], true),
        ];
        let devices = |p: PersonId| {
            if p.0 == 2 {
                vec!["sip:frank@192.0.2.9:5062;transport=udp".to_string()]
            } else {
                vec![]
            }
        };
        let order = [PersonId(2), PersonId(3), PersonId(1), PersonId(99)];
        let got: Vec<String> = redirect_contacts(&order, &people, devices, "trunk.example.net", 10)
            .iter()
            .map(|c| c.header_value())
            .collect();
        assert_eq!(
            got,
            vec![
                "<sip:frank@192.0.2.9:5062;transport=udp>;q=1.0",
                "<sip:+441632960002@trunk.example.net>;q=0.9",
                "<sip:+441632960001@trunk.example.net>;q=0.8",
                "<sip:erin@pbx.example.com>;q=0.7",
            ]
        );
    }

    fn redirector(schedules: Vec<Schedule>, people: Vec<Person>) -> Redirector {
        Redirector {
            snapshot: Arc::new(RwLock::new(HashMap::from([(OrgId(1), Snapshot { schedules, people })]))),
            registrar: None,
            trusted: vec!["10.0.0.0/8".parse::<SourceNet>().unwrap()],
            trunk_users: vec!["oncall-4471".into()],
            phone_host: None,
            max_contacts: 10,
            counters: Arc::default(),
        }
    }

    /// Issue 17: a schedule is found only in the organization the call's number routes to.
    #[test]
    fn another_organizations_schedule_is_not_found() {
        let r = redirector(vec![schedule(1, "Night", &[1])], vec![person(1, vec![phone("+441632960001")], false)]);
        let pbx: SocketAddr = "10.1.2.3:5060".parse().unwrap();
        let now = Timestamp::now();
        assert!(matches!(r.decide("sip:oncall-night@h", pbx, Some(OrgId(1)), now), Some(Decision::Redirect { .. })));
        assert_eq!(r.decide("sip:oncall-night@h", pbx, Some(OrgId(2)), now), Some(Decision::Reject(404)));
        assert_eq!(r.decide("sip:oncall-night-bridge@h", pbx, None, now), Some(Decision::Reject(404)));
        assert_eq!(r.decide("sip:oncall-night@h", "192.0.2.66:5060".parse().unwrap(), None, now), Some(Decision::Reject(403)));
    }

    #[test]
    fn decisions_for_trusted_and_untrusted_sources() {
        let r = redirector(
            vec![schedule(1, "Night", &[1]), schedule(2, "Weekend", &[2])],
            vec![
                person(1, vec![phone("+441632960001")], false),
                person(2, vec![phone("+441632960002")], true),
            ],
        );
        let pbx: SocketAddr = "10.1.2.3:5060".parse().unwrap();
        let now = Timestamp::now();
        match r.decide("sip:oncall-night@oncall.example", pbx, Some(OrgId(1)), now) {
            // No trunk domain: the number goes back to the asking PBX.
            Some(Decision::Redirect { schedule, contacts }) => {
                assert_eq!(schedule, "Night");
                assert_eq!(
                    contacts,
                    vec![RedirectContact {
                        uri: "sip:+441632960001@10.1.2.3".into(),
                        q: QValue::MAX
                    }]
                );
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
        assert_eq!(
            r.decide("sip:oncall-night@h", "192.0.2.66:5060".parse().unwrap(), Some(OrgId(1)), now),
            Some(Decision::Reject(403))
        );
        assert_eq!(
            r.decide("sip:oncall-payroll@h", "192.0.2.66:5060".parse().unwrap(), Some(OrgId(1)), now),
            Some(Decision::Reject(403))
        );
        assert_eq!(r.decide("sip:oncall-payroll@h", pbx, Some(OrgId(1)), now), Some(Decision::Reject(404)));
        // Weekend's only person is disabled: nobody to send the call to.
        assert_eq!(r.decide("sip:oncall-weekend@h", pbx, Some(OrgId(1)), now), Some(Decision::Reject(480)));
        assert_eq!(
            r.decide("sip:oncall-night-bridge@h", pbx, Some(OrgId(1)), now),
            Some(Decision::Bridge {
                schedule: "Night".into()
            })
        );
        assert_eq!(r.decide("sip:100@h", pbx, Some(OrgId(1)), now), None);
        // A provider delivering a call to the trunk's own username is an ordinary call.
        assert_eq!(
            r.decide("sip:OnCall-4471@h", "192.0.2.66:5060".parse().unwrap(), Some(OrgId(1)), now),
            None
        );
        let mut text = PrometheusText::new();
        r.counters.write_metrics(&mut text);
        let metrics = text.finish();
        for line in [
            "{result=\"redirected\"} 1",
            "{result=\"forbidden\"} 2",
            "{result=\"not_found\"} 1",
            "{result=\"nobody_on_call\"} 1",
            "{result=\"bridged\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} not in\n{metrics}");
        }
    }

    #[test]
    fn at_most_max_contacts_each_once_and_q_never_reaches_zero() {
        let people: Vec<Person> = (1..=30)
            .map(|i| {
                person(
                    i,
                    vec![phone(&format!("+4416329600{i:02}")), phone("+441632960099")],
                    false,
                )
            })
            .collect();
        let order: Vec<PersonId> = people.iter().map(|p| p.id).collect();
        let got = redirect_contacts(&order, &people, |_| vec![], "h", 20);
        assert_eq!(got.len(), 20);
        assert_eq!(got.iter().filter(|c| c.uri.contains("+441632960099")).count(), 1);
        assert_eq!(got.first().unwrap().q.to_string(), "1.0");
        assert_eq!(got.last().unwrap().q.to_string(), "0.05");
        assert!(got.windows(2).all(|w| w[0].q > w[1].q));
        assert!(redirect_contacts(&[], &people, |_| vec![], "h", 10).is_empty());
    }
}
