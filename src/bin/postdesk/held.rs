//! `postdesk quarantine …` and `postdesk suppressions …`: held mail and bounced addresses.

use std::io::Write as _;

use anyhow::Context as _;

use postdesk::store::{AnyStore, HeldFilter, Store};
use postdesk::term::{block, line};
use postdesk::{Processor, exit};

use crate::cli::{QuarantineCommand, SuppressionsCommand};
use postdesk::term::clip;

use crate::write_bytes;

/// `quarantine list | show | release`.
pub(crate) async fn quarantine(
    p: Processor<AnyStore>,
    cmd: &QuarantineCommand,
) -> anyhow::Result<u8> {
    let store = p.store();
    match cmd {
        QuarantineCommand::List {
            json,
            reason,
            since,
            limit,
        } => {
            let filter = HeldFilter {
                reason: reason.clone(),
                since: since
                    .as_deref()
                    .map(|s| postdesk::stats::since(s, chrono::Utc::now()))
                    .transpose()
                    .context("--since")?,
                limit: Some(*limit),
            };
            let held = store.held(&filter).await?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&held)?);
            } else {
                outln!(
                    "{:>6}  {:<24}  {:<11}  {:<10}  {:<10}  {:<22}  {:<28}  SUBJECT",
                    "ID",
                    "RECEIVED",
                    "ACTION",
                    "QUEUE",
                    "RELEASED",
                    "REASON",
                    "FROM"
                );
                for h in held {
                    outln!(
                        "{:>6}  {:<24}  {:<11}  {:<10}  {:<10}  {:<22}  {:<28}  {}",
                        h.id,
                        h.received_at,
                        h.action,
                        clip(&line(h.queue.as_deref().unwrap_or("-")), 9),
                        // The day it was released: a flag, and when.
                        h.released_at
                            .as_deref()
                            .map_or("-", |r| r.get(..10).unwrap_or(r)),
                        clip(&line(&h.reason), 21),
                        clip(&line(h.from.as_deref().unwrap_or("-")), 27),
                        clip(&line(h.subject.as_deref().unwrap_or("-")), 59)
                    );
                }
            }
            Ok(exit::OK)
        }
        QuarantineCommand::Show { id, json, raw } => {
            let Some(h) = store.held_message(*id).await? else {
                eprintln!("postdesk: no held message #{id}");
                return Ok(exit::FAILURE);
            };
            if *raw {
                let bytes = h.raw.as_deref().unwrap_or(&h.headers);
                write_bytes(bytes)?;
            } else if *json {
                outln!("{}", serde_json::to_string_pretty(&h)?);
            } else {
                let s = &h.summary;
                outln!("held #{}  {} ({})", s.id, s.action, line(&s.reason));
                outln!("  detail:   {}", line(&s.detail));
                outln!("  verdict:  {}", s.verdict);
                outln!("  from:     {}", line(s.from.as_deref().unwrap_or("-")));
                outln!("  subject:  {}", line(s.subject.as_deref().unwrap_or("-")));
                outln!(
                    "  size:     {} bytes{}",
                    s.size,
                    if s.raw_kept {
                        ""
                    } else {
                        " (headers kept only)"
                    }
                );
                outln!("  received: {}", s.received_at);
                outln!("  queue:    {}", line(s.queue.as_deref().unwrap_or("-")));
                if let Some(r) = &s.released_at {
                    outln!("  released: {r}");
                }
                outln!();
                outln!("{}", block(String::from_utf8_lossy(&h.headers).trim_end()));
            }
            Ok(exit::OK)
        }
        QuarantineCommand::Release { id, json } => {
            let outcome = p.release(*id).await?;
            if *json {
                outln!("{}", serde_json::to_string(&outcome)?);
            } else {
                outln!(
                    "released #{id}: {} {}",
                    outcome.action.as_str(),
                    outcome.ticket_ref.as_deref().unwrap_or("")
                );
            }
            Ok(exit::OK)
        }
    }
}

/// `suppressions list`.
pub(crate) async fn suppressions(
    store: &AnyStore,
    cmd: &SuppressionsCommand,
) -> anyhow::Result<u8> {
    match cmd {
        SuppressionsCommand::List { json, limit } => {
            let list = store.suppressions(*limit).await?;
            if *json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in list {
                    outln!(
                        "{:<40} {:<8} {}  {}",
                        line(&s.address),
                        line(s.status.as_deref().unwrap_or("-")),
                        s.created_at,
                        clip(&line(&s.reason), 59)
                    );
                }
            }
            Ok(exit::OK)
        }
        SuppressionsCommand::Remove { address } => {
            if store.remove_suppression(address).await? {
                outln!("removed {}", line(address));
                Ok(exit::OK)
            } else {
                eprintln!("postdesk: {} is not on the suppression list", line(address));
                Ok(exit::FAILURE)
            }
        }
    }
}
