//! Embedding postdesk: process two messages into a store and print the ticket.
//!
//! Run with `cargo run --example embed -- [DATABASE_URL]` (default: an in-memory SQLite
//! database; `postgres://…` works the same).

use postdesk::store::{self, Store, StoreOptions};
use postdesk::{Config, Delivery, Processor};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite::memory:".into());
    let store = store::open(&url, &StoreOptions::default()).await?;
    let config = Config::from_toml(
        r#"
        [tickets]
        prefix = "HELP"

        [queues.billing]
        addresses = ["billing@example.com"]
        "#,
    )
    .map_err(|errors| errors[0].to_string())?;
    let processor = Processor::new(config, store);

    let request = b"From: Ann <ann@example.org>\r\n\
        To: billing@example.com\r\n\
        Subject: Charged twice\r\n\
        Message-ID: <req-1@example.org>\r\n\
        \r\n\
        My card was charged twice for the November invoice.\r\n";
    let delivery = Delivery {
        recipient: Some("billing@example.com".into()),
        ..Delivery::default()
    };
    let outcome = processor.process_with(request, &delivery).await?;
    println!(
        "{:?} {:?} in queue {}",
        outcome.action, outcome.ticket_ref, outcome.queue
    );

    let follow_up = b"From: ann@example.org\r\n\
        To: billing@example.com\r\n\
        Subject: Re: [HELP-1] Charged twice\r\n\
        Message-ID: <req-2@example.org>\r\n\
        \r\n\
        Here is the statement.\r\n";
    let outcome = processor.process(follow_up).await?;
    println!(
        "{:?} {:?} ({})",
        outcome.action,
        outcome.ticket_ref,
        outcome.thread.unwrap_or_default()
    );

    let ticket = processor.store().ticket(1).await?.expect("ticket 1 exists");
    println!(
        "{} messages from {}",
        ticket.thread.len(),
        ticket.ticket.requester
    );
    Ok(())
}
