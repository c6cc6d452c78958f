//! `postdesk tickets …`: list, show, close, reopen, sign, attachment.

use std::io::Write as _;

use anyhow::Context;

use postdesk::store::{AnyStore, OutboundFilter, Store, TicketFilter, TicketStatus};
use postdesk::term::{block, line};
use postdesk::{Processor, exit};

use crate::cli::TicketsCommand;
use postdesk::term::clip;

use crate::write_bytes;

pub(crate) async fn tickets(p: Processor<AnyStore>, cmd: &TicketsCommand) -> anyhow::Result<u8> {
    match cmd {
        TicketsCommand::List {
            json,
            status,
            queue,
            limit,
        } => {
            let filter = TicketFilter {
                status: *status,
                queue: queue.clone(),
                limit: Some(*limit),
            };
            let list = p.store().tickets(&filter).await?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| {
                        let mut v = serde_json::to_value(t).unwrap_or_default();
                        v["ref"] = p.tag().reference(t.id).into();
                        v
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!(
                    "{:<10}  {:<6}  {:<10}  {:>4}  {:<24}  {:<28}  SUBJECT",
                    "TICKET",
                    "STATUS",
                    "QUEUE",
                    "MSGS",
                    "UPDATED",
                    "REQUESTER"
                );
                for t in &list {
                    outln!(
                        "{:<10}  {:<6}  {:<10}  {:>4}  {:<24}  {:<28}  {}",
                        p.tag().reference(t.id),
                        t.status,
                        clip(&t.queue, 9),
                        t.messages,
                        t.updated_at,
                        clip(&line(&t.requester), 27),
                        clip(&line(&t.subject), 59)
                    );
                }
                if list.len() as u64 >= u64::from(*limit) {
                    let more = p.store().ticket_count(&filter).await? - list.len() as i64;
                    if more > 0 {
                        outln!("… and {more} more (raise --limit to see them)");
                    }
                }
            }
            Ok(exit::OK)
        }
        TicketsCommand::Close { reference } | TicketsCommand::Reopen { reference } => {
            let id = ticket_id(&p, reference)?;
            let status = if matches!(cmd, TicketsCommand::Close { .. }) {
                TicketStatus::Closed
            } else {
                TicketStatus::Open
            };
            if !p.store().set_status(id, status).await? {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            }
            outln!("{} {status}", p.tag().reference(id));
            Ok(exit::OK)
        }
        TicketsCommand::Sign {
            reference,
            address,
            json,
        } => {
            let id = ticket_id(&p, reference)?;
            let address = postdesk::address::plain_address(address).ok_or_else(|| {
                anyhow::anyhow!(
                    "--address `{}` is not a plain address like support@example.com",
                    line(address)
                )
            })?;
            let address = &address;
            if p.store().ticket(id).await?.is_none() {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            }
            let signer = p.signer().await?;
            let sep = p.config().threading.options().token_separator;
            let domain = address.rsplit_once('@').map_or("localhost", |(_, d)| d);
            let nonce = u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
                    & u128::from(u64::MAX),
            )
            .unwrap_or_default();
            let v = serde_json::json!({
                "ref": p.tag().reference(id),
                "reply_address": signer.reply_address(address, p.tag(), id, sep),
                "subject_tag": signer.subject_tag(p.tag(), id),
                "message_id": format!("<{}>", signer.message_id(id, nonce, domain)),
            });
            if *json {
                outln!("{v}");
            } else {
                for k in ["reply_address", "subject_tag", "message_id"] {
                    outln!("{k:<14} {}", v[k].as_str().unwrap_or_default());
                }
            }
            Ok(exit::OK)
        }
        TicketsCommand::Attachment { id, output } => {
            let Some((a, content)) = p.attachment(*id).await? else {
                eprintln!("postdesk: no attachment #{id}");
                return Ok(exit::FAILURE);
            };
            if a.damaged {
                eprintln!(
                    "postdesk: warning: attachment #{id} is damaged (its transfer encoding was broken): this is what could be decoded of it"
                );
            }
            match output {
                Some(path) => std::fs::write(path, &content)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => write_bytes(&content)?,
            }
            Ok(exit::OK)
        }
        TicketsCommand::Show {
            reference,
            json,
            full,
            raw,
        } => {
            let id = ticket_id(&p, reference)?;
            if let Some(n) = raw {
                let Some(bytes) = p.store().message_raw(id, *n).await? else {
                    eprintln!(
                        "postdesk: {} has no message {n} (`tickets show {}` numbers them from 1)",
                        p.tag().reference(id),
                        p.tag().reference(id)
                    );
                    return Ok(exit::FAILURE);
                };
                write_bytes(&bytes)?;
                return Ok(exit::OK);
            }
            let Some(t) = p.store().ticket(id).await? else {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            };
            let outbound = p
                .store()
                .outbound(&OutboundFilter {
                    ticket_id: Some(id),
                    ..OutboundFilter::default()
                })
                .await?;
            if *json {
                let mut v = serde_json::to_value(&t)?;
                v["ref"] = p.tag().reference(id).into();
                v["outbound"] = serde_json::to_value(&outbound)?;
                // The number `--raw N` takes.
                if let Some(thread) = v["thread"].as_array_mut() {
                    for (i, m) in thread.iter_mut().enumerate() {
                        m["number"] = (i + 1).into();
                    }
                }
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(exit::OK);
            }
            outln!("{}  {}", p.tag().reference(id), line(&t.ticket.subject));
            outln!("  status:    {}", t.ticket.status);
            outln!("  queue:     {}", t.ticket.queue);
            outln!("  requester: {}", line(&t.ticket.requester));
            outln!("  created:   {}", t.ticket.created_at);
            outln!("  updated:   {}", t.ticket.updated_at);
            for (i, m) in t.thread.iter().enumerate() {
                outln!();
                outln!(
                    "--- message {} of {} ({}) ---",
                    i + 1,
                    t.thread.len(),
                    m.verdict
                );
                outln!("  from:     {}", line(m.sender().as_deref().unwrap_or("-")));
                outln!("  date:     {}", m.sent_at.as_deref().unwrap_or("-"));
                outln!("  received: {}", m.received_at);
                outln!("  subject:  {}", line(&m.subject));
                outln!("  thread:   {}", line(&m.thread_reason));
                for a in &m.attachments {
                    outln!(
                        "  attach:   #{} {} ({}, {} bytes{})",
                        a.id,
                        line(a.filename.as_deref().unwrap_or("(unnamed)")),
                        line(&a.content_type),
                        a.size,
                        if a.damaged {
                            ", damaged: what could be decoded"
                        } else {
                            ""
                        }
                    );
                }
                outln!();
                for text in block(&m.reply_text).lines() {
                    outln!("  {text}");
                }
                match m.quoted_lines {
                    0 => {}
                    n if *full => {
                        outln!();
                        outln!(
                            "  ({n} quoted line{} below, hidden without --full)",
                            plural(n)
                        );
                        for text in block(m.elided_text.trim_end_matches(['\n', '\r'])).lines() {
                            outln!("  {text}");
                        }
                    }
                    n => {
                        outln!();
                        outln!("  ({n} quoted line{} hidden; --full shows them)", plural(n));
                    }
                }
            }
            if !outbound.is_empty() {
                outln!();
                outln!("--- outbound mail ---");
                for o in outbound.iter().rev() {
                    outln!("  {}", crate::outbox::describe(o));
                }
            }
            Ok(exit::OK)
        }
    }
}

/// `s` after a count other than one.
fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn ticket_id(p: &Processor<AnyStore>, reference: &str) -> anyhow::Result<i64> {
    p.tag().parse_reference(reference).ok_or_else(|| {
        anyhow::anyhow!(
            "`{reference}` is not a ticket reference (like {})",
            p.tag().reference(42)
        )
    })
}
