//! `postdesk explain`, `postdesk import` and `postdesk config check`: reading mail and
//! configuration from files.

use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use postdesk::config::Config;
use postdesk::import::ImportEvent;
use postdesk::process::Action;
use postdesk::source;
use postdesk::store::AnyStore;
use postdesk::term::{block, line};
use postdesk::thread::ThreadDecision;
use postdesk::{Processor, exit};

use crate::cli::ImportArgs;

pub(crate) fn config_check(file: Option<&Path>) -> anyhow::Result<u8> {
    let Some(file) = file else {
        outln!("no configuration file given (--config or POSTDESK_CONFIG): defaults apply");
        return Ok(exit::OK);
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match Config::from_toml(&text) {
        Ok(_) => {
            outln!("{}: ok", file.display());
            Ok(exit::OK)
        }
        Err(errors) => {
            for mut e in errors {
                e.path = Some(file.to_path_buf());
                eprintln!("{e}");
            }
            Ok(exit::FAILURE)
        }
    }
}

/// `explain`: one report per message of every input (`-`, files, mbox files, folders),
/// in order; 1 when an input could not be read.
pub(crate) async fn explain(
    p: Processor<AnyStore>,
    inputs: &[PathBuf],
    json: bool,
) -> anyhow::Result<u8> {
    let mut code = exit::OK;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for input in inputs {
        if input.as_os_str() == "-" {
            // As ingest reads it: at most the hard cap is kept, the rest only counted.
            let cap = p.config().limits.quarantine_raw_cap;
            let read = source::read_capped(std::io::stdin().lock(), cap)
                .map(|(raw, _total)| raw)
                .context("reading standard input");
            code = code.max(explain_one(&p, &mut out, "-", read, json).await?);
            continue;
        }
        let files = match source::expand(input) {
            Ok(expansion) => {
                // As import does: what is not mail is skipped, named files with a warning.
                for skipped in &expansion.skipped {
                    if skipped.named {
                        eprintln!(
                            "postdesk: warning: skipped {}: {}",
                            line(&skipped.path.display().to_string()),
                            skipped.reason
                        );
                    }
                }
                expansion.files
            }
            Err(e) => {
                let e = Err(anyhow::Error::from(e));
                code = code
                    .max(explain_one(&p, &mut out, &input.display().to_string(), e, json).await?);
                continue;
            }
        };
        for file in files {
            let messages = match source::messages(&file) {
                Ok(messages) => messages,
                Err(e) => {
                    let origin = file.path().display().to_string();
                    code = code.max(explain_one(&p, &mut out, &origin, Err(e.into()), json).await?);
                    continue;
                }
            };
            for m in messages {
                let (origin, raw) = match m {
                    Ok(m) => (m.origin, Ok(m.raw)),
                    Err(e) => (file.path().display().to_string(), Err(e.into())),
                };
                code = code.max(explain_one(&p, &mut out, &origin, raw, json).await?);
            }
        }
    }
    out.flush()?;
    Ok(code)
}

/// The report on one message from `origin` (or on why it could not be read): the same
/// facts as text or as one JSON object. Returns the exit status it calls for.
async fn explain_one(
    p: &Processor<AnyStore>,
    out: &mut impl Write,
    origin: &str,
    raw: anyhow::Result<Vec<u8>>,
    json: bool,
) -> anyhow::Result<u8> {
    let result = match raw {
        Ok(raw) => p.explain(&raw).await.map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    let x = match result {
        Ok(x) => x,
        Err(e) => {
            if json {
                let v = serde_json::json!({"file": origin, "error": format!("{e:#}")});
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "{}: error: {}", line(origin), line(&format!("{e:#}")))?;
            }
            return Ok(exit::FAILURE);
        }
    };
    if json {
        let mut v = serde_json::to_value(&x)?;
        v["file"] = serde_json::Value::String(origin.to_string());
        writeln!(out, "{v}")?;
        return Ok(exit::OK);
    }
    writeln!(out, "{}", line(origin))?;
    writeln!(out, "  verdict:  {}", x.verdict)?;
    for r in &x.reasons {
        writeln!(out, "    because {}", line(r))?;
    }
    let id = x.message_id.as_deref().map(|id| format!("<{id}>"));
    writeln!(out, "  message:  {}", line(id.as_deref().unwrap_or("-")))?;
    writeln!(
        out,
        "  from:     {}",
        line(x.from.as_deref().unwrap_or("-"))
    )?;
    writeln!(
        out,
        "  subject:  {}",
        line(x.subject.as_deref().unwrap_or("-"))
    )?;
    if let Some(b) = &x.bounce {
        let kind = match b.permanent {
            Some(true) => "permanent failure",
            Some(false) => "temporary failure or delay",
            None => "failure (permanence not stated)",
        };
        writeln!(
            out,
            "  bounce:   {kind}, status {}",
            line(b.status.as_deref().unwrap_or("-"))
        )?;
        let recipients = if b.recipients.is_empty() {
            "-".to_string()
        } else {
            b.recipients.join(", ")
        };
        writeln!(out, "    recipients: {}", line(&recipients))?;
        let original = b.original_message_id.as_deref().map(|id| format!("<{id}>"));
        writeln!(
            out,
            "    original:   {}",
            line(original.as_deref().unwrap_or("-"))
        )?;
        writeln!(
            out,
            "    diagnostic: {}",
            line(b.diagnostic.as_deref().unwrap_or("-"))
        )?;
    }
    if let Some(c) = &x.collision {
        writeln!(out, "  note:     {}", line(c))?;
    }
    match &x.thread {
        Some(ThreadDecision::Existing {
            ticket_id,
            method,
            reason,
            reopen,
        }) => writeln!(
            out,
            "  thread:   {} by {} ({}){}",
            p.tag().reference(*ticket_id),
            serde_json::to_value(method)?.as_str().unwrap_or("?"),
            line(reason),
            if *reopen { ", reopening it" } else { "" }
        )?,
        Some(ThreadDecision::New {
            reason,
            linked_ticket_id,
        }) => writeln!(
            out,
            "  thread:   new ticket ({}){}",
            line(reason),
            linked_ticket_id
                .map(|t| format!(", linked to {}", p.tag().reference(t)))
                .unwrap_or_default()
        )?,
        None => writeln!(out, "  thread:   - (not a usable message)")?,
    }
    writeln!(
        out,
        "  action:   {} (queue {})",
        x.action.as_str(),
        line(&x.queue)
    )?;
    let no_ack = if x.thread.is_none() {
        "none: not a usable message"
    } else {
        "- (no [outbound] transport configured)"
    };
    writeln!(
        out,
        "  ack:      {}",
        line(x.acknowledgement.as_deref().unwrap_or(no_ack))
    )?;
    if x.reply_text.trim().is_empty() {
        writeln!(out, "  new text: (none)")?;
    } else {
        writeln!(out, "  new text:")?;
        for text in block(&x.reply_text).lines() {
            writeln!(out, "    {text}")?;
        }
    }
    Ok(exit::OK)
}

pub(crate) async fn import(p: Processor<AnyStore>, args: &ImportArgs) -> anyhow::Result<u8> {
    let mut sources = source::Expansion::default();
    for path in &args.paths {
        sources
            .extend(source::expand(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let total_bytes: u64 = sources
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f.path()).ok())
        .map(|m| m.len())
        .sum();
    let bar = if args.no_progress || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::hidden())
    } else {
        let b = ProgressBar::new(total_bytes);
        b.set_style(ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )?);
        b
    };
    let batch_size = args.batch_size.unwrap_or(p.config().import.batch_size);
    let summary =
        postdesk::import::import(std::sync::Arc::new(p), sources, batch_size, |e| match e {
            ImportEvent::Skipped {
                path,
                reason,
                named,
            } => {
                if named {
                    bar.suspend(|| {
                        eprintln!(
                            "postdesk: warning: skipped {}: {reason}",
                            line(&path.display().to_string())
                        )
                    })
                }
            }
            ImportEvent::Stored { bytes, messages } => {
                bar.inc(bytes);
                bar.set_message(format!("{messages} messages"));
            }
            ImportEvent::ReadError { path, error } => bar.suspend(|| {
                eprintln!(
                    "postdesk: reading {}: {}",
                    line(&path.display().to_string()),
                    line(&error)
                )
            }),
        })
        .await?;
    bar.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "imported {} messages in {:.2} s ({:.0}/s)",
            summary.messages,
            summary.seconds,
            summary.messages_per_second
        );
        for a in [
            Action::Created,
            Action::Appended,
            Action::Duplicate,
            Action::Quarantined,
            Action::Dropped,
        ] {
            outln!(
                "  {:<12} {}",
                a.as_str(),
                summary.by_action.get(&a).unwrap_or(&0)
            );
        }
        outln!("  by verdict:");
        for (v, n) in &summary.by_verdict {
            outln!("    {:<10} {n}", v.as_str());
        }
        if summary.skipped > 0 {
            outln!(
                "  skipped      {} files that are not mail (POSTDESK_LOG=debug names them)",
                summary.skipped
            );
        }
        if summary.read_errors > 0 {
            outln!("  read errors  {}", summary.read_errors);
        }
    }
    Ok(if summary.read_errors > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}
