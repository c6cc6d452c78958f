//! `poll`, `watch` and `mailboxes`: IMAP fetching, output only (the loop is
//! `postdesk::imap`).

use std::io::{IsTerminal, Write as _};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use postdesk::imap::health::statuses;
use postdesk::imap::watch::WatchEvent;
use postdesk::imap::{MailboxConfig, PollEvent, fetch};
use postdesk::store::AnyStore;
use postdesk::term::line;
use postdesk::{Config, Processor, exit};

use crate::cli::{PollArgs, WatchArgs};

/// The configured mailboxes `names` selects (all when empty); an unknown name is an error.
fn selected<'a>(config: &'a Config, names: &[String]) -> anyhow::Result<Vec<&'a MailboxConfig>> {
    if config.mailbox.is_empty() {
        bail!("no [[mailbox]] in the configuration");
    }
    for n in names {
        if !config.mailbox.iter().any(|m| m.name() == n) {
            bail!("no mailbox named `{}` in the configuration", line(n));
        }
    }
    Ok(config
        .mailbox
        .iter()
        .filter(|m| names.is_empty() || names.iter().any(|n| n == m.name()))
        .collect())
}

/// One log line per message: `mailbox folder uid N: created PD-1 (human)`.
fn message_line(event: &PollEvent) -> Option<String> {
    let PollEvent::Taken {
        mailbox,
        folder,
        uid,
        outcome,
        ..
    } = event
    else {
        return None;
    };
    let place = outcome
        .ticket_ref
        .clone()
        .or(outcome.held_id.map(|h| format!("held #{h}")))
        .unwrap_or_default();
    Some(format!(
        "{} {} uid {uid}: {} {place} ({})",
        line(mailbox),
        line(folder),
        outcome.action.as_str(),
        outcome.verdict.as_str()
    ))
}

pub(crate) async fn poll(p: Processor<AnyStore>, args: &PollArgs) -> anyhow::Result<u8> {
    let mailboxes = selected(p.config(), &args.mailbox)?;
    let terminal = std::io::stderr().is_terminal() && !args.no_progress;
    let bar = if terminal {
        let b = ProgressBar::new(0);
        b.set_style(ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} messages {msg}",
        )?);
        b
    } else {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden())
    };
    let holder = fetch::holder_id();
    let mut reports = Vec::new();
    let mut failed = false;
    for mb in &mailboxes {
        bar.set_message(mb.name().to_string());
        let mut on_event = |e: PollEvent| match &e {
            PollEvent::Found { messages, .. } => bar.inc_length(*messages),
            PollEvent::Taken { .. } => {
                bar.inc(1);
                // One line per message when nobody watches a bar (cron, a log).
                if !terminal
                    && !args.json
                    && let Some(l) = message_line(&e)
                {
                    let _ = writeln!(std::io::stdout().lock(), "{l}");
                }
            }
        };
        match fetch::poll_mailbox(&p, mb, &holder, None, &mut on_event).await {
            Ok(report) => reports.push(report),
            Err(failure) => {
                failed = true;
                bar.suspend(|| eprintln!("postdesk: {}", line(&failure.source.to_string())));
                reports.push(*failure.report);
            }
        }
    }
    bar.finish_and_clear();
    let owned: Vec<MailboxConfig> = mailboxes.iter().map(|m| (*m).clone()).collect();
    let warnings: Vec<String> = statuses(p.store(), &owned)
        .await?
        .into_iter()
        .filter_map(|s| s.warning)
        .collect();
    for w in &warnings {
        eprintln!("postdesk: warning: {}", line(w));
    }
    if args.json {
        let out = serde_json::json!({ "mailboxes": reports, "warnings": warnings });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in &reports {
            if r.skipped {
                outln!(
                    "{}: skipped (another poll is working on it)",
                    line(&r.mailbox)
                );
                continue;
            }
            let by: Vec<String> = r
                .by_action
                .iter()
                .map(|(a, n)| format!("{} {n}", a.as_str()))
                .collect();
            let status = match &r.error {
                Some(_) => "failed after",
                None => "took",
            };
            outln!(
                "{}: {status} {} messages{}",
                line(&r.mailbox),
                r.messages,
                if by.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by.join(", "))
                }
            );
        }
    }
    Ok(if failed { exit::FAILURE } else { exit::OK })
}

/// `watch`: until SIGTERM or SIGINT; one line per message and per error on standard
/// error (a daemon's log).
pub(crate) async fn watch(p: Processor<AnyStore>, args: &WatchArgs) -> anyhow::Result<u8> {
    use tokio::signal::unix::{SignalKind, signal};
    let mailboxes = selected(p.config(), &args.mailbox)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping after the batch in hand");
        let _ = stop_tx.send(true);
    });
    let on_event = |e: WatchEvent| match e {
        WatchEvent::Poll(e) => {
            if let Some(l) = message_line(&e) {
                eprintln!("postdesk: {l}");
            }
        }
        WatchEvent::Error { error, retry_in } => eprintln!(
            "postdesk: {} (trying again in {} s)",
            line(&error),
            retry_in.as_secs()
        ),
        WatchEvent::Busy { mailbox } => eprintln!(
            "postdesk: mailbox `{}` is being fetched by another poll; waiting",
            line(&mailbox)
        ),
    };
    postdesk::imap::watch::watch(&p, &mailboxes, stop, &on_event).await;
    p.store().close().await;
    Ok(exit::OK)
}

pub(crate) async fn mailboxes(store: &AnyStore, config: &Config, json: bool) -> anyhow::Result<u8> {
    let all = statuses(store, &config.mailbox).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(exit::OK);
    }
    if all.is_empty() {
        outln!("no [[mailbox]] in the configuration");
    }
    for s in &all {
        let h = &s.health;
        outln!(
            "{}  {}  {}  after={}",
            line(&s.name),
            line(&s.server),
            line(&s.account),
            s.after
        );
        outln!(
            "  last success: {}",
            h.last_success_at.as_deref().unwrap_or("never")
        );
        if let Some(e) = &h.last_error {
            outln!(
                "  last error:   {} {}",
                h.last_error_at.as_deref().unwrap_or(""),
                line(e)
            );
        }
        outln!(
            "  messages: {} in all, {} last time; failures in a row: {}",
            h.messages_total,
            h.last_run_messages,
            h.consecutive_failures
        );
        if let Some(w) = &s.warning {
            outln!("  WARNING: {}", line(w));
        }
    }
    Ok(exit::OK)
}
