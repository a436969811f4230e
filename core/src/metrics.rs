//! Request metrics: counts, time to answer, MTTA and MTTR, by day, hour of day and person.
//!
//! [`compute`] is pure: the store fetches the rows of a date range and hands them over, so
//! percentiles are computed in Rust identically on SQLite and PostgreSQL (neither `Any`-portable
//! SQL nor SQLite has percentile functions). Days and hours are those of the time zone asked
//! for, so a request at 23:30 in New York lands on the right day of the chart.
//!
//! Definitions, all measured from `received_at`:
//! time to answer (someone picked up), time to acknowledge (MTTA), time to complete (MTTR).
//! Percentiles use the nearest-rank method.

use crate::ids::PersonId;
use crate::request::{Actor, RequestStatus};
use crate::timestamp::{Millis, Timestamp};
use chrono::{NaiveDate, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What metrics need of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsRow {
    pub status: RequestStatus,
    pub received_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub answered_by: Option<Actor>,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<Actor>,
    pub completed_at: Option<Timestamp>,
    /// `call`, `alert` or `api` (issue 20): the metrics are also split by it.
    pub source: String,
}

impl MetricsRow {
    /// Who the request counts for: whoever acknowledged it, else whoever answered.
    fn person(&self) -> Option<PersonId> {
        [self.acknowledged_by, self.answered_by].into_iter().flatten().find_map(|a| match a {
            Actor::Person(p) => Some(p),
            _ => None,
        })
    }
}

/// Distribution of a duration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Stats {
    pub samples: usize,
    pub mean: Option<Millis>,
    pub p50: Option<Millis>,
    pub p90: Option<Millis>,
}

impl Stats {
    pub fn of(mut samples: Vec<i64>) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        samples.sort_unstable();
        let n = samples.len();
        // i128: a sum of i64 millisecond spans cannot overflow it.
        let sum: i128 = samples.iter().map(|&s| i128::from(s)).sum();
        let mean = i64::try_from(sum / n as i128).unwrap_or(i64::MAX);
        Stats { samples: n, mean: Some(Millis(mean)), p50: percentile(&samples, 50), p90: percentile(&samples, 90) }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[i64], p: usize) -> Option<Millis> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().map(Millis)
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub requests: usize,
    pub answered: usize,
    pub acknowledged: usize,
    pub completed: usize,
    pub exhausted: usize,
    pub abandoned: usize,
    pub time_to_answer: Stats,
    /// MTTA is `time_to_acknowledge.mean`.
    pub time_to_acknowledge: Stats,
    /// MTTR is `time_to_complete.mean`.
    pub time_to_complete: Stats,
}

impl Summary {
    fn of(rows: &[&MetricsRow]) -> Summary {
        let span = |f: fn(&MetricsRow) -> Option<Timestamp>| -> Vec<i64> {
            rows.iter().filter_map(|r| f(r).map(|t| (t - r.received_at).0)).filter(|&d| d >= 0).collect()
        };
        let count = |s: RequestStatus| rows.iter().filter(|r| r.status == s).count();
        Summary {
            requests: rows.len(),
            answered: rows.iter().filter(|r| r.answered_at.is_some()).count(),
            acknowledged: rows.iter().filter(|r| r.acknowledged_at.is_some()).count(),
            completed: count(RequestStatus::Completed),
            exhausted: count(RequestStatus::Exhausted),
            abandoned: count(RequestStatus::Abandoned),
            time_to_answer: Stats::of(span(|r| r.answered_at)),
            time_to_acknowledge: Stats::of(span(|r| r.acknowledged_at)),
            time_to_complete: Stats::of(span(|r| r.completed_at)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub time_zone: Tz,
    pub from: Timestamp,
    pub to: Timestamp,
    pub total: Summary,
    /// Every local day of the range, empty days included (charts want a continuous axis).
    pub by_day: Vec<(NaiveDate, Summary)>,
    /// 24 entries, hour 0..=23 local.
    pub by_hour: Vec<(u32, Summary)>,
    /// People who answered or acknowledged, by id.
    pub by_person: Vec<(PersonId, Summary)>,
    /// Where the requests came from (`call`, `alert`, `api`), those that had any.
    #[serde(default)]
    pub by_source: Vec<(String, Summary)>,
}

/// Longest range (in days) for which empty days are filled in.
const MAX_FILLED_DAYS: i64 = 3 * 366;

/// Metrics of the requests received in `[from, to)`; rows outside are ignored.
pub fn compute(rows: &[MetricsRow], tz: Tz, from: Timestamp, to: Timestamp) -> Metrics {
    let rows: Vec<&MetricsRow> = rows.iter().filter(|r| from <= r.received_at && r.received_at < to).collect();
    let local = |t: Timestamp| t.to_utc().with_timezone(&tz);

    let mut days: BTreeMap<NaiveDate, Vec<&MetricsRow>> = BTreeMap::new();
    if from < to {
        let first = local(from).date_naive();
        let last = local(to - Millis(1)).date_naive();
        if (last - first).num_days() <= MAX_FILLED_DAYS {
            let mut d = first;
            while d <= last {
                days.entry(d).or_default();
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
    }
    let mut hours: Vec<Vec<&MetricsRow>> = vec![Vec::new(); 24];
    let mut people: BTreeMap<PersonId, Vec<&MetricsRow>> = BTreeMap::new();
    let mut sources: BTreeMap<&str, Vec<&MetricsRow>> = BTreeMap::new();
    for &r in &rows {
        sources.entry(r.source.as_str()).or_default().push(r);
        let l = local(r.received_at);
        days.entry(l.date_naive()).or_default().push(r);
        if let Some(h) = hours.get_mut(l.hour() as usize) {
            h.push(r);
        }
        if let Some(p) = r.person() {
            people.entry(p).or_default().push(r);
        }
    }
    Metrics {
        time_zone: tz,
        from,
        to,
        total: Summary::of(&rows),
        by_day: days.into_iter().map(|(d, rs)| (d, Summary::of(&rs))).collect(),
        by_hour: hours.iter().enumerate().map(|(h, rs)| (h as u32, Summary::of(rs))).collect(),
        by_person: people.into_iter().map(|(p, rs)| (p, Summary::of(&rs))).collect(),
        by_source: sources.into_iter().map(|(s, rs)| (s.to_string(), Summary::of(&rs))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn row(received: i64, ack_after_min: Option<i64>, who: i64) -> MetricsRow {
        MetricsRow {
            status: if ack_after_min.is_some() { RequestStatus::Acknowledged } else { RequestStatus::Exhausted },
            received_at: Timestamp(received),
            answered_at: None,
            answered_by: None,
            acknowledged_at: ack_after_min.map(|m| Timestamp(received) + Millis::minutes(m)),
            acknowledged_by: ack_after_min.map(|_| Actor::Person(PersonId(who))),
            completed_at: None,
            source: if who == 9 { "alert".into() } else { "call".into() },
        }
    }

    #[test]
    fn percentiles_nearest_rank() {
        let s = Stats::of((1..=10).collect());
        assert_eq!((s.p50, s.p90, s.mean), (Some(Millis(5)), Some(Millis(9)), Some(Millis(5))));
        let one = Stats::of(vec![7]);
        assert_eq!((one.p50, one.p90), (Some(Millis(7)), Some(Millis(7))));
        assert_eq!(Stats::of(vec![]).p50, None);
    }

    #[test]
    fn buckets_by_local_day_hour_and_person() {
        // 2024-01-02T03:30Z is 2024-01-01 22:30 in New York.
        let t = 1_704_166_200_000;
        let rows = vec![row(t, Some(2), 1), row(t + 3_600_000, Some(4), 1), row(t + 2 * 3_600_000, None, 0)];
        let from = Timestamp(t - 86_400_000);
        let m = compute(&rows, New_York, from, Timestamp(t + 86_400_000));
        assert_eq!(m.total.requests, 3);
        assert_eq!(m.total.acknowledged, 2);
        assert_eq!(m.total.exhausted, 1);
        assert_eq!(m.total.time_to_acknowledge.mean, Some(Millis::minutes(3)));
        let jan1 = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let day = m.by_day.iter().find(|(d, _)| *d == jan1).unwrap();
        assert_eq!(day.1.requests, 2); // 22:30 and 23:30
        assert_eq!(m.by_hour[22].1.requests, 1);
        assert_eq!(m.by_hour.len(), 24);
        assert_eq!(m.by_person, vec![(PersonId(1), m.by_person[0].1.clone())]);
        assert_eq!(m.by_person[0].1.requests, 2);
        // Continuous axis: every day of the range is present.
        assert!(m.by_day.windows(2).all(|w| w[0].0.succ_opt() == Some(w[1].0)));
    }

    /// Issue 20: requests are also counted by where they came from.
    #[test]
    fn split_by_source() {
        let t = 1_704_166_200_000;
        let rows = vec![row(t, Some(2), 1), row(t + 1000, Some(4), 9), row(t + 2000, None, 9)];
        let m = compute(&rows, New_York, Timestamp(t - 1), Timestamp(t + 86_400_000));
        let by: Vec<(&str, usize, usize)> = m.by_source.iter().map(|(s, x)| (s.as_str(), x.requests, x.acknowledged)).collect();
        assert_eq!(by, vec![("alert", 2, 1), ("call", 1, 1)]);
    }
}
