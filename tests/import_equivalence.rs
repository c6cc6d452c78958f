//! `import` threads exactly as one `ingest` per message does: a property test over
//! generated conversations, imported in random batch sizes and interrupted at a random
//! point (the interrupted batch is lost, as when the process is killed before its commit),
//! then imported again from the start.
//!
//! What it caught: a reply to a message that was appended in the same batch to a ticket of
//! an earlier batch opened a new ticket (the batch's own writes were seen through an
//! overlay that did not know that ticket).

use std::collections::BTreeMap;

use postdesk::store::{SqliteStore, Store, TicketFilter};
use postdesk::{Config, Delivery, Processor};
use proptest::prelude::*;

/// One generated message: who writes, which earlier message (by index) it answers, and how
/// it refers to it.
#[derive(Debug, Clone)]
struct Step {
    /// 0..4: a customer address; 4: a colleague in Cc of the first message.
    writer: usize,
    /// `None`: a new conversation; `Some(k)`: answers message `k mod (index)`.
    answers: Option<usize>,
    /// How the answer refers: 0 In-Reply-To and References, 1 References only (same
    /// subject), 2 References only with a new subject (a new topic), 3 In-Reply-To only
    /// (many clients send no References).
    how: u8,
    /// Deliver this message twice.
    twice: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            0..5usize,
            prop::option::weighted(0.7, 0..1000usize),
            0..4u8,
            prop::bool::weighted(0.1),
        )
            .prop_map(|(writer, answers, how, twice)| Step {
                writer,
                answers,
                how,
                twice,
            }),
        1..40,
    )
}

/// The raw messages of a generated conversation set, in delivery order.
fn messages(steps: &[Step]) -> Vec<Vec<u8>> {
    let mut subjects: Vec<String> = Vec::new();
    let mut chains: Vec<Vec<String>> = Vec::new();
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let from = format!("user{}@example.org", s.writer);
        let id = format!("g{i}@example.org");
        let (subject, refs, extra) = match s.answers.filter(|_| i > 0).map(|k| k % i) {
            None => (format!("Topic {i}"), Vec::new(), String::new()),
            Some(k) => {
                let mut refs = chains[k].clone();
                refs.push(format!("g{k}@example.org"));
                let subject = match s.how {
                    2 => format!("Another question {i}"),
                    _ => format!("Re: {}", subjects[k]),
                };
                let irt = if matches!(s.how, 0 | 3) {
                    format!("In-Reply-To: <g{k}@example.org>\r\n")
                } else {
                    String::new()
                };
                let list: Vec<String> = refs.iter().map(|r| format!("<{r}>")).collect();
                let extra = if s.how == 3 {
                    irt
                } else {
                    format!("{irt}References: {}\r\n", list.join(" "))
                };
                (subject, refs, extra)
            }
        };
        let cc = if s.answers.is_none() {
            "Cc: user4@example.org\r\n"
        } else {
            ""
        };
        let raw = format!(
            "From: {from}\r\nTo: support@example.com\r\n{cc}Subject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\nMessage {i}.\r\n"
        );
        subjects.push(subject.trim_start_matches("Re: ").to_string());
        chains.push(refs);
        out.push(raw.clone().into_bytes());
        if s.twice {
            out.push(raw.into_bytes());
        }
    }
    out
}

/// Every stored message's ticket, by Message-ID, and each ticket's participants.
async fn state(p: &Processor<SqliteStore>) -> BTreeMap<String, (i64, Vec<String>)> {
    let mut out = BTreeMap::new();
    for t in p.store().tickets(&TicketFilter::default()).await.unwrap() {
        let detail = p.store().ticket(t.id).await.unwrap().unwrap();
        for m in detail.thread {
            out.insert(
                m.message_id.unwrap_or_default(),
                (t.id, detail.participants.clone()),
            );
        }
    }
    out
}

async fn store() -> Processor<SqliteStore> {
    Processor::new(Config::default(), SqliteStore::in_memory().await.unwrap())
}

/// Import `raw` in batches whose sizes cycle through `sizes`.
async fn import(p: &Processor<SqliteStore>, raw: &[Vec<u8>], sizes: &[usize]) {
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= raw.len() {
            break;
        }
        let end = (at + size).min(raw.len());
        let items: Vec<(&[u8], Delivery)> = raw[at..end]
            .iter()
            .map(|r| (r.as_slice(), Delivery::default()))
            .collect();
        p.process_batch(&items).await.unwrap();
        at = end;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn import_in_batches_with_a_kill_threads_as_one_ingest_per_message(
        steps in steps(),
        sizes in prop::collection::vec(1..12usize, 1..5),
        sizes_after in prop::collection::vec(1..12usize, 1..5),
        kill_at in 0..1000usize,
    ) {
        let raw = messages(&steps);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let one_by_one = store().await;
            for r in &raw {
                one_by_one.process(r).await.unwrap();
            }
            let imported = store().await;
            // The batches before the kill are committed; the one it hits is lost.
            let kill_at = kill_at % (raw.len() + 1);
            import(&imported, &raw[..kill_at], &sizes).await;
            // Run again from the start, as an operator does after a crash.
            import(&imported, &raw, &sizes_after).await;
            prop_assert_eq!(state(&imported).await, state(&one_by_one).await);
            Ok(())
        })?;
    }
}
