//! `postdesk outbox …` and `postdesk template render`.

use std::io::Write as _;

use anyhow::Context;

use postdesk::process::{Delivery, Reply, ReplyAttachment};
use postdesk::store::{AnyStore, OutboundFilter, OutboundStatus, OutboundSummary, Store};
use postdesk::term::{clip, line};
use postdesk::{Processor, exit};

use crate::cli::{OutboxCommand, ReplyArgs, TemplateCommand};
use crate::tickets::ticket_id;
use crate::write_bytes;

/// One line about an outbox row, for `tickets show` and `outbox list`.
pub(crate) fn describe(o: &OutboundSummary) -> String {
    let what = match o.status {
        OutboundStatus::Skipped => format!(
            "{} not sent: {}",
            o.kind.as_str(),
            o.reason.as_deref().unwrap_or("-")
        ),
        status => format!(
            "{} {status} to {} ({} attempt(s){}{})",
            o.kind.as_str(),
            o.recipient.as_deref().unwrap_or("-"),
            o.attempts,
            o.sent_at
                .as_deref()
                .map(|t| format!(", sent {t}"))
                .unwrap_or_default(),
            o.last_error
                .as_deref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default(),
        ),
    };
    line(&format!("#{} {} {what}", o.id, o.created_at)).into_owned()
}

pub(crate) async fn outbox(p: Processor<AnyStore>, cmd: &OutboxCommand) -> anyhow::Result<u8> {
    match cmd {
        OutboxCommand::Flush { json } => {
            let report = p.flush_outbox(None).await?;
            if *json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!(
                    "sent {}, deferred {}, failed {}",
                    report.sent,
                    report.deferred,
                    report.failed
                );
            }
            Ok(exit::OK)
        }
        OutboxCommand::List {
            json,
            status,
            limit,
        } => {
            let status = status
                .as_deref()
                .map(str::parse::<OutboundStatus>)
                .transpose()?;
            let list = p
                .store()
                .outbound(&OutboundFilter {
                    ticket_id: None,
                    status,
                    limit: Some(*limit),
                })
                .await?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|o| {
                        let mut v = serde_json::to_value(o).unwrap_or_default();
                        v["ticket"] = p.tag().reference(o.ticket_id).into();
                        v
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for o in &list {
                    outln!(
                        "{:<10} {}",
                        p.tag().reference(o.ticket_id),
                        clip(&describe(o), 120)
                    );
                }
            }
            Ok(exit::OK)
        }
    }
}

pub(crate) async fn template(p: Processor<AnyStore>, cmd: &TemplateCommand) -> anyhow::Result<u8> {
    let TemplateCommand::Render { ticket, message } = cmd;
    let composed = match (ticket, message) {
        (Some(reference), _) => {
            let id = ticket_id(&p, reference)?;
            match p.preview_acknowledgement(id).await? {
                Some(c) => c,
                None => {
                    eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                    return Ok(exit::FAILURE);
                }
            }
        }
        (None, Some(file)) => {
            let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            match p
                .preview_acknowledgement_of(&raw, &Delivery::default())
                .await?
            {
                Ok(c) => c,
                Err(why) => {
                    eprintln!(
                        "postdesk: no acknowledgement would be sent ({})",
                        line(&why)
                    );
                    return Ok(exit::FAILURE);
                }
            }
        }
        (None, None) => unreachable!("clap requires one"),
    };
    write_bytes(&composed.raw)?;
    Ok(exit::OK)
}

pub(crate) async fn reply(p: Processor<AnyStore>, args: &ReplyArgs) -> anyhow::Result<u8> {
    let id = ticket_id(&p, &args.reference)?;
    let body = match &args.file {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => {
            std::io::read_to_string(std::io::stdin().lock()).context("reading standard input")?
        }
    };
    if body.trim().is_empty() {
        anyhow::bail!("the reply is empty");
    }
    let mut attachments = Vec::new();
    for path in &args.attach {
        attachments.push(ReplyAttachment {
            filename: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into()),
            content_type: None,
            content: std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        });
    }
    let outcome = p
        .reply(
            id,
            &Reply {
                body,
                cc: args.cc.clone(),
                attachments,
                close: args.close,
            },
        )
        .await?;
    // Sent now if the transport takes it; otherwise it stays queued.
    let sent = match p.flush_outbox(Some(outcome.outbox_id)).await {
        Ok(r) if r.sent == 1 => "sent",
        Ok(r) if r.failed == 1 => "failed",
        Ok(_) => "queued",
        Err(e) => {
            eprintln!("postdesk: left queued: {}", line(&e.to_string()));
            "queued"
        }
    };
    if args.json {
        let mut v = serde_json::to_value(&outcome)?;
        v["status"] = sent.into();
        outln!("{v}");
    } else {
        outln!(
            "{} reply {} <{}>",
            outcome.ticket_ref,
            sent,
            outcome.message_id
        );
    }
    Ok(if sent == "failed" {
        exit::FAILURE
    } else {
        exit::OK
    })
}
