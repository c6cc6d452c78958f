//! `postdesk purge`: the library's retention, its counts as text or JSON.

use std::io::Write as _;

use postdesk::exit;
use postdesk::store::{AnyStore, PurgeKind};

use crate::cli::PurgeArgs;

pub(crate) async fn purge(store: &AnyStore, args: &PurgeArgs) -> anyhow::Result<u8> {
    let before = postdesk::purge::cutoff(&args.older_than, chrono::Utc::now())?;
    let report = postdesk::purge::purge(store, &args.what, &before, args.dry_run).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(exit::OK);
    }
    if report.dry_run {
        outln!("would delete, older than {before} (dry run, nothing deleted):");
    } else {
        outln!("deleted, older than {before}:");
    }
    for (kind, c) in &report.kinds {
        match kind {
            PurgeKind::ClosedTickets => outln!(
                "  {:<15} {} tickets ({} messages, {} attachments, {} outbox rows)",
                kind.as_str(),
                c.records,
                c.messages,
                c.attachments,
                c.outbound
            ),
            _ => outln!("  {:<15} {} records", kind.as_str(), c.records),
        }
    }
    Ok(exit::OK)
}
