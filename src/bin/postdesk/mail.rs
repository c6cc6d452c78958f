//! `postdesk explain`, `postdesk import` and `postdesk config check`: reading mail and
//! configuration from files.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use postdesk::config::Config;
use postdesk::import::ImportEvent;
use postdesk::process::Action;
use postdesk::source;
use postdesk::store::AnyStore;
use postdesk::term::line;
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

pub(crate) async fn explain(
    p: Processor<AnyStore>,
    files: &[PathBuf],
    json: bool,
) -> anyhow::Result<u8> {
    let mut code = exit::OK;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for file in files {
        let result = match std::fs::read(file) {
            Ok(raw) => p.explain(&raw).await.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::from(e)),
        };
        match result {
            Ok(x) if json => {
                let mut v = serde_json::to_value(&x)?;
                v["file"] = serde_json::Value::String(file.display().to_string());
                writeln!(out, "{v}")?;
            }
            Ok(x) => {
                writeln!(out, "{}", line(&file.display().to_string()))?;
                writeln!(out, "  verdict:  {}", x.verdict)?;
                for r in &x.reasons {
                    writeln!(out, "    because {}", line(r))?;
                }
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
                if let Some(c) = &x.collision {
                    writeln!(out, "  note:     {}", line(c))?;
                }
                match &x.thread {
                    Some(postdesk::thread::ThreadDecision::Existing {
                        ticket_id, reason, ..
                    }) => writeln!(
                        out,
                        "  thread:   {} ({})",
                        p.tag().reference(*ticket_id),
                        line(reason)
                    )?,
                    Some(postdesk::thread::ThreadDecision::New { reason, .. }) => {
                        writeln!(out, "  thread:   new ticket ({})", line(reason))?
                    }
                    None => {}
                }
                writeln!(out, "  action:   {} (queue {})", x.action.as_str(), x.queue)?;
                if let Some(a) = &x.acknowledgement {
                    writeln!(out, "  ack:      {}", line(a))?;
                }
            }
            Err(e) => {
                code = exit::FAILURE;
                if json {
                    let v = serde_json::json!({"file": file.display().to_string(), "error": format!("{e:#}")});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}: error: {e:#}", file.display())?;
                }
            }
        }
    }
    out.flush()?;
    Ok(code)
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
