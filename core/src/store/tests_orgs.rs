//! Store tests for organizations as an operator manages them (issue 17): numbers, disabling, deleting.

use super::testing::{on_each_backend, TestDb};
use super::*;
use crate::inbound::{route, InboundCall, Routed};
use crate::person::NewPerson;
use crate::timestamp::Timestamp;

const NOW: Timestamp = Timestamp(1_717_200_000_000);

#[tokio::test]
async fn numbers_route_to_their_organization_and_are_owned_once() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let a = s.create_organization("Apartments", "apartments", "UTC", NOW).await.unwrap();
        let b = s.create_organization("Help Desk", "help-desk", "UTC", NOW).await.unwrap();
        assert_eq!(s.add_number(a, "+1 555 123 0000", None, NOW).await.unwrap(), "+15551230000");
        s.add_number(b, "sip:help@desk.example", None, NOW).await.unwrap();
        s.add_number(b, "4100", Some("pbx-b"), NOW).await.unwrap();
        s.add_number(a, "4100", None, NOW).await.unwrap();
        let taken = s.add_number(b, "+15551230000", None, NOW).await.unwrap_err();
        assert!(taken.to_string().contains("apartments"), "{}: {taken}", db.label);
        assert!(matches!(s.add_number(a, "not a number!", None, NOW).await, Err(StoreError::Invalid(_))), "{}", db.label);

        let table = s.numbers(None).await.unwrap();
        let call = |user, source| InboundCall { user, host: "oncall.test", to_user: None, source };
        assert_eq!(route(&table, &call("+15551230000", None)), Routed::Org(a));
        assert_eq!(route(&table, &call("4100", Some("pbx-b"))), Routed::Org(b));
        assert_eq!(route(&table, &call("4100", None)), Routed::Org(a));
        assert_eq!(route(&table, &InboundCall { user: "help", host: "desk.example", ..call("", None) }), Routed::Org(b));
        assert_eq!(s.numbers(Some(b)).await.unwrap().len(), 2);

        s.set_organization_disabled(a, Some(NOW)).await.unwrap();
        assert!(s.organization(a).await.unwrap().disabled_at.is_some());
        assert_eq!(route(&s.numbers(None).await.unwrap(), &call("+15551230000", None)), Routed::Disabled(a), "{}", db.label);
        s.set_organization_disabled(a, None).await.unwrap();
        assert!(s.remove_number(a, "+15551230000").await.unwrap());
        assert!(!s.remove_number(b, "4100x").await.unwrap_or(false));
        assert_eq!(route(&s.numbers(None).await.unwrap(), &call("+15551230000", None)), Routed::Nobody);
        let limits = crate::store::OrgLimits { max_calls: Some(4), max_pages_per_hour: Some(10), text_from: Some("+15550001111".into()), speech_voice: Some("de".into()), language: Some("de".into()) };
        s.set_organization_limits(b, &limits).await.unwrap();
        assert_eq!(s.organization(b).await.unwrap().limits, limits, "{}", db.label);
        assert_eq!(s.organization(a).await.unwrap().limits, crate::store::OrgLimits::default(), "{}", db.label);
        s.rename_organization(b, "Help Desk East").await.unwrap();
        assert_eq!(s.find_organization("help-desk").await.unwrap().name, "Help Desk East");
        assert_eq!(s.find_organization(&b.0.to_string()).await.unwrap().id, b);
        assert!(matches!(s.find_organization("nobody").await, Err(StoreError::NotFound(_))));
    })
    .await;
}

/// Deleting the demo organization removes every row it had and says how many; the other organization
/// keeps all of its rows.
#[tokio::test]
async fn deleting_an_organization_removes_its_rows_only() {
    on_each_backend(|db: TestDb| async move {
        let s = &db.store;
        let demo = crate::demo::seed(s, NOW).await.unwrap();
        s.add_number(demo, "+15551230000", None, NOW).await.unwrap();
        let other = s.create_organization("Help Desk", "help-desk", "UTC", NOW).await.unwrap();
        let new = NewPerson { name: "Olga".into(), email: Some("olga@desk.example".into()), phones: vec!["+15559870001".into()], time_zone: "UTC".into(), ..NewPerson::default() };
        s.add_person(other, &new, NOW).await.unwrap();
        s.add_number(other, "+15559870000", None, NOW).await.unwrap();
        let before = s.organization_row_counts(demo).await.unwrap();
        let other_before = s.organization_row_counts(other).await.unwrap();
        assert!(before.iter().any(|(t, n)| *t == "people" && *n >= 3), "{}: {before:?}", db.label);

        let removal = s.delete_organization(demo).await.unwrap();
        for (table, n) in &before {
            assert_eq!(removal.count(table), *n, "{}: {table} removed", db.label);
        }
        assert!(s.organization_row_counts(demo).await.unwrap().is_empty());
        assert!(matches!(s.organization(demo).await, Err(StoreError::NotFound(_))));
        assert_eq!(s.organization_row_counts(other).await.unwrap(), other_before, "{}: the other organization is untouched", db.label);
        let owners: Vec<_> = s.numbers(None).await.unwrap().iter().map(|n| n.org).collect();
        assert!(owners.contains(&other) && !owners.contains(&demo), "{}: numbers left {owners:?}", db.label);
        // The demo can be seeded again afterwards (nothing of it is left to collide with).
        crate::demo::seed(s, NOW).await.unwrap();
    })
    .await;
}
