//! The whole pure pipeline on arbitrary bytes, chained as `Processor::analyse` does:
//! parse → classify → bounce → trim → thread keys, and subject normalisation.
//!
//! Besides panics, it checks the documented contracts that hold for any input. A panic
//! inside mail-parser that `parse` catches is not a finding (the message is quarantined as
//! `parser_panic`, by design): the panic hook only prints it. A panic that escapes the
//! target still aborts the run (libfuzzer-sys catches it and aborts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk::{
    bounce::parse_bounce,
    classify::{Verdict, classify},
    parse::{ParseLimits, Parsed, parse},
    thread::{SubjectTag, ThreadKeys, ThreadOptions, normalize_subject},
    trim::trim_reply,
};

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    },
    |data: &[u8]| {
    let msg = match parse(data, None, &ParseLimits::default()) {
        Parsed::Message(msg) => msg,
        Parsed::Rejected { .. } => return,
    };
    let class = classify(&msg);
    // Every message, not only those classified as bounces: it must hold up on any mail.
    let bounce = parse_bounce(&msg);
    if class.verdict == Verdict::Bounce {
        let _ = bounce.as_ref().map(|b| b.original_message_id.as_deref());
    }

    let trimmed = trim_reply(&msg.text_body, msg.html_body.as_deref());
    if msg.html_body.is_none() && !msg.text_body.trim().is_empty() {
        assert!(
            !trimmed.new_text.is_empty(),
            "trim_reply returned no new text for a body with text"
        );
    }

    let tag = SubjectTag::new("PD");
    let keys = ThreadKeys::of(
        &msg,
        &tag,
        &ThreadOptions::default(),
        Some("support@example.org"),
    );
    for (i, id) in keys.referenced_ids.iter().enumerate() {
        assert!(
            !keys.referenced_ids[..i].contains(id),
            "referenced_ids has a duplicate"
        );
        assert!(
            msg.message_id.as_deref() != Some(id.as_str()),
            "a message references itself"
        );
    }
    let _ = normalize_subject(&msg.subject, Some(&tag));
    let _ = normalize_subject(&msg.subject, None);
    }
);
