//! `postdesk stats`: the library's counts per day and queue, as a table or JSON.

use std::io::Write as _;

use postdesk::exit;
use postdesk::stats::{self, DayStats};
use postdesk::store::AnyStore;
use postdesk::term::line;

use crate::cli::StatsArgs;

pub(crate) async fn stats(store: &AnyStore, args: &StatsArgs) -> anyhow::Result<u8> {
    let since = stats::since(&args.since, chrono::Utc::now())?;
    let days = stats::report(store, &since, args.queue.as_deref()).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&days)?);
        return Ok(exit::OK);
    }
    if days.is_empty() {
        outln!("no mail since {since}");
        return Ok(exit::OK);
    }
    outln!(
        "{:<10}  {:<12} {:>8} {:>7} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>12}",
        "DAY",
        "QUEUE",
        "MESSAGES",
        "CREATED",
        "FOLLOW-UP",
        "ACK-SENT",
        "ACK-SKIP",
        "ACK-ERR",
        "QUARANT",
        "DROPPED",
        "RELEASED",
        "MEDIAN-REPLY"
    );
    for d in &days {
        outln!(
            "{:<10}  {:<12} {:>8} {:>7} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>12}",
            d.day,
            line(&d.queue),
            d.messages.values().sum::<u64>(),
            d.tickets_created,
            d.follow_ups,
            d.acks_sent,
            d.acks_skipped.values().sum::<u64>(),
            d.acks_failed,
            d.quarantined,
            d.dropped,
            d.released,
            d.median_first_reply_secs
                .map(duration)
                .unwrap_or_else(|| "-".into())
        );
        outln!("{}", details(d));
    }
    Ok(exit::OK)
}

/// The second line of a day: verdicts and skip reasons.
fn details(d: &DayStats) -> String {
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{} {v}", line(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!("            verdicts: {}", join(&d.messages));
    if !d.acks_skipped.is_empty() {
        s.push_str(&format!("; acks skipped: {}", join(&d.acks_skipped)));
    }
    if d.acks_queued > 0 {
        s.push_str(&format!("; acks queued: {}", d.acks_queued));
    }
    if d.answered > 0 {
        s.push_str(&format!("; answered: {}", d.answered));
    }
    s
}

/// Seconds as `1d 2h`, `3h 5m`, `4m 10s` or `12s`.
fn duration(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if d > 0 => format!("{d}d {h}h"),
        _ if h > 0 => format!("{h}h {m}m"),
        _ if m > 0 => format!("{m}m {s}s"),
        _ => format!("{s}s"),
    }
}
