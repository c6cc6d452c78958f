//! `postdesk stats`: what happened to the mail of each day and queue, computed from the
//! plain rows of [`Store::stats_rows`] by pure functions
//! (so both backends count alike and the counting is tested without a database).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::store::{StatsRows, Store, StoreError};

/// A `--since` that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{0}`: expected a number and a unit, e.g. 7d, 12h, 30m or 2w")]
pub struct SinceError(pub String);

/// The start of a window of `spec` (`30m`, `12h`, `7d`, `2w`) ending at `now`, as the
/// store writes times (RFC 3339 UTC with milliseconds), so it compares as text.
pub fn since(spec: &str, now: DateTime<Utc>) -> Result<String, SinceError> {
    let err = || SinceError(spec.to_string());
    let spec = spec.trim();
    let split = spec.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (n, unit) = spec.split_at(split);
    let n: i64 = n.parse().map_err(|_| err())?;
    let length = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
    .ok_or_else(err)?;
    let start = now.checked_sub_signed(length).ok_or_else(err)?;
    Ok(start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The counts of `store` from `since` (see [`since`]) on, per day and queue (only `queue`
/// when given).
pub async fn report<S: Store>(
    store: &S,
    since: &str,
    queue: Option<&str>,
) -> Result<Vec<DayStats>, StoreError> {
    let rows = store.stats_rows(since).await?;
    Ok(aggregate(&rows, since, queue))
}

/// What happened in one queue on one day (UTC).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DayStats {
    /// The day, `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The queue (`-` for held messages whose queue was never known).
    pub queue: String,
    /// Messages received, by verdict (stored in tickets and held alike; a released
    /// message once, by the verdict it was held with).
    pub messages: BTreeMap<String, u64>,
    /// Tickets opened.
    pub tickets_created: u64,
    /// Messages that joined an existing ticket.
    pub follow_ups: u64,
    /// Acknowledgements sent.
    pub acks_sent: u64,
    /// Acknowledgements not sent on purpose, by reason (its code, e.g. `follow-up`).
    pub acks_skipped: BTreeMap<String, u64>,
    /// Acknowledgements that failed for good.
    pub acks_failed: u64,
    /// Acknowledgements still queued.
    pub acks_queued: u64,
    /// Messages quarantined.
    pub quarantined: u64,
    /// Messages dropped by policy (a record kept).
    pub dropped: u64,
    /// Held messages released (on the day of their release).
    pub released: u64,
    /// Tickets opened this day that an agent has answered.
    pub answered: u64,
    /// Median seconds from those tickets' first message to their first agent reply.
    pub median_first_reply_secs: Option<i64>,
}

/// The counts of the day and queue of `time`, when it is in the window and the queue is
/// wanted.
fn entry<'a>(
    days: &'a mut BTreeMap<(String, String), DayStats>,
    since: &str,
    wanted: &dyn Fn(&str) -> bool,
    time: &str,
    queue: &str,
) -> Option<&'a mut DayStats> {
    if time < since || !wanted(queue) {
        return None;
    }
    let d = day(time)?;
    Some(
        days.entry((d.clone(), queue.to_string()))
            .or_insert_with(|| DayStats {
                day: d,
                queue: queue.to_string(),
                ..DayStats::default()
            }),
    )
}

/// The `YYYY-MM-DD` of an RFC 3339 time, or `None` for one that is not.
fn day(time: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d").to_string())
}

/// The median of `values` (the mean of the middle two for an even count, rounded down).
pub fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]).div_euclid(2)
    })
}

/// Count `rows` per day and queue, from `since` on (a time as [`since`] gives it), only
/// for `queue` when given. Sorted by day, then queue. Rows whose times cannot be read are
/// left out.
pub fn aggregate(rows: &StatsRows, since: &str, queue: Option<&str>) -> Vec<DayStats> {
    let mut days: BTreeMap<(String, String), DayStats> = BTreeMap::new();
    let mut waits: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    let wanted = |q: &str| queue.is_none_or(|w| w == q);
    for m in &rows.messages {
        if let Some(s) = entry(&mut days, since, &wanted, &m.received_at, &m.queue) {
            // A released message arrived once: its held record counts it.
            if !m.released {
                *s.messages.entry(m.verdict.clone()).or_default() += 1;
            }
            if m.opened_ticket {
                s.tickets_created += 1;
            } else {
                s.follow_ups += 1;
            }
        }
    }
    for h in &rows.held {
        let q = h.queue.as_deref().unwrap_or("-");
        if let Some(s) = entry(&mut days, since, &wanted, &h.received_at, q) {
            *s.messages.entry(h.verdict.clone()).or_default() += 1;
            match h.action.as_str() {
                "dropped" => s.dropped += 1,
                _ => s.quarantined += 1,
            }
        }
        if let Some(released) = &h.released_at
            && let Some(s) = entry(&mut days, since, &wanted, released, q)
        {
            s.released += 1;
        }
    }
    for a in &rows.acks {
        if let Some(s) = entry(&mut days, since, &wanted, &a.created_at, &a.queue) {
            match a.status.as_str() {
                "sent" => s.acks_sent += 1,
                "failed" => s.acks_failed += 1,
                "skipped" => {
                    // `code: detail` as the outbox records it: counted by the code.
                    let reason = a.reason.as_deref().unwrap_or("-");
                    let code = reason.split(':').next().unwrap_or(reason).trim();
                    *s.acks_skipped.entry(code.to_string()).or_default() += 1;
                }
                _ => s.acks_queued += 1,
            }
        }
    }
    for r in &rows.responses {
        let Some(reply) = &r.first_reply_at else {
            continue;
        };
        let (Ok(first), Ok(reply)) = (
            DateTime::parse_from_rfc3339(&r.first_message_at),
            DateTime::parse_from_rfc3339(reply),
        ) else {
            continue;
        };
        if let Some(s) = entry(&mut days, since, &wanted, &r.first_message_at, &r.queue) {
            s.answered += 1;
            waits
                .entry((s.day.clone(), s.queue.clone()))
                .or_default()
                .push((reply - first).num_seconds().max(0));
        }
    }
    for (key, mut w) in waits {
        if let Some(s) = days.get_mut(&key) {
            s.median_first_reply_secs = median(&mut w);
        }
    }
    days.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StatsAck, StatsHeld, StatsMessage, StatsResponse};

    fn message(at: &str, queue: &str, verdict: &str, opened: bool) -> StatsMessage {
        StatsMessage {
            received_at: at.into(),
            queue: queue.into(),
            verdict: verdict.into(),
            opened_ticket: opened,
            released: false,
        }
    }

    #[test]
    fn since_parses_units_and_refuses_the_rest() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(since("7d", now).unwrap(), "2026-11-30T04:00:00.000Z");
        assert_eq!(since("12h", now).unwrap(), "2026-12-06T16:00:00.000Z");
        assert_eq!(since("30m", now).unwrap(), "2026-12-07T03:30:00.000Z");
        assert_eq!(since("1w", now).unwrap(), "2026-11-30T04:00:00.000Z");
        for bad in ["", "7", "d", "7y", "-1d", "99999999999999999d"] {
            assert!(since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 10]), Some(3));
    }

    #[test]
    fn counts_per_day_and_queue() {
        let rows = StatsRows {
            messages: vec![
                message("2026-12-01T10:00:00.000Z", "support", "human", true),
                message("2026-12-01T11:00:00.000Z", "support", "human", false),
                message("2026-12-01T12:00:00.000Z", "support", "autoreply", false),
                message("2026-12-02T09:00:00.000Z", "sales", "human", true),
                message("2026-11-01T09:00:00.000Z", "sales", "human", true),
                StatsMessage {
                    released: true,
                    ..message("2026-12-02T08:00:00.000Z", "support", "human", true)
                },
            ],
            held: vec![
                StatsHeld {
                    received_at: "2026-12-01T13:00:00.000Z".into(),
                    queue: Some("support".into()),
                    verdict: "spam".into(),
                    action: "quarantined".into(),
                    released_at: Some("2026-12-02T08:00:00.000Z".into()),
                },
                StatsHeld {
                    received_at: "2026-12-01T14:00:00.000Z".into(),
                    queue: None,
                    verdict: "invalid".into(),
                    action: "dropped".into(),
                    released_at: None,
                },
            ],
            acks: vec![
                StatsAck {
                    created_at: "2026-12-01T10:00:01.000Z".into(),
                    queue: "support".into(),
                    status: "sent".into(),
                    reason: None,
                },
                StatsAck {
                    created_at: "2026-12-01T11:00:01.000Z".into(),
                    queue: "support".into(),
                    status: "skipped".into(),
                    reason: Some("response-suppressed: X-Auto-Response-Suppress: All".into()),
                },
                StatsAck {
                    created_at: "2026-12-01T12:00:01.000Z".into(),
                    queue: "support".into(),
                    status: "failed".into(),
                    reason: None,
                },
            ],
            responses: vec![
                StatsResponse {
                    queue: "support".into(),
                    first_message_at: "2026-12-01T10:00:00.000Z".into(),
                    first_reply_at: Some("2026-12-01T12:00:00.000Z".into()),
                },
                StatsResponse {
                    queue: "sales".into(),
                    first_message_at: "2026-12-02T09:00:00.000Z".into(),
                    first_reply_at: None,
                },
            ],
        };
        let days = aggregate(&rows, "2026-11-30T00:00:00.000Z", None);
        let keys: Vec<_> = days
            .iter()
            .map(|d| (d.day.as_str(), d.queue.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("2026-12-01", "-"),
                ("2026-12-01", "support"),
                ("2026-12-02", "sales"),
                ("2026-12-02", "support"),
            ]
        );
        let support = &days[1];
        assert_eq!(support.messages["human"], 2);
        assert_eq!(support.messages["autoreply"], 1);
        assert_eq!(support.messages["spam"], 1);
        assert_eq!(support.tickets_created, 1);
        assert_eq!(support.follow_ups, 2);
        assert_eq!(support.acks_sent, 1);
        assert_eq!(support.acks_failed, 1);
        assert_eq!(support.acks_skipped["response-suppressed"], 1);
        assert_eq!(support.quarantined, 1);
        assert_eq!(support.answered, 1);
        assert_eq!(support.median_first_reply_secs, Some(7200));
        assert_eq!(days[0].dropped, 1);
        assert_eq!(days[0].messages["invalid"], 1);
        assert_eq!(days[2].tickets_created, 1);
        assert_eq!(days[2].median_first_reply_secs, None);
        assert_eq!(days[3].released, 1);
        // The released message opened a ticket but is counted once, as held.
        assert_eq!(days[3].tickets_created, 1);
        assert!(days[3].messages.is_empty());

        let sales = aggregate(&rows, "2026-11-30T00:00:00.000Z", Some("sales"));
        assert_eq!(sales.len(), 1);
        assert_eq!(sales[0].queue, "sales");
        // The window leaves older rows out.
        let all = aggregate(&rows, "2026-10-01T00:00:00.000Z", Some("sales"));
        assert_eq!(all.len(), 2);
    }
}
