//! Stage 3: which ticket does a message belong to?
//!
//! Split in two so the decision stays pure:
//! 1. [`ThreadKeys::of`] extracts what to look up (referenced Message-IDs, ticket
//!    references in the subject, the sender);
//! 2. the store answers with a [`ThreadLookup`] (inside the same transaction that will
//!    write the message, so the answer cannot go stale);
//! 3. [`decide`] turns keys and lookup into a [`ThreadDecision`].

use regex::Regex;

/// What a message offers for threading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadKeys {
    /// Referenced Message-IDs, most specific first: `In-Reply-To`, then `References`
    /// from newest to oldest, without duplicates.
    pub referenced_ids: Vec<String>,
    /// Ticket numbers found as `[PREFIX-N]` in the subject, in order.
    pub subject_refs: Vec<i64>,
    /// The sender's address, lower-cased.
    pub sender: Option<String>,
}

impl ThreadKeys {
    /// Extract the keys of `msg`; `tag` recognises the subject reference.
    pub fn of(msg: &crate::parse::ParsedMessage, tag: &SubjectTag) -> ThreadKeys {
        let mut referenced_ids: Vec<String> = Vec::new();
        for id in msg.in_reply_to.iter().chain(msg.references.iter().rev()) {
            if !referenced_ids.contains(id) && msg.message_id.as_deref() != Some(id) {
                referenced_ids.push(id.clone());
            }
        }
        ThreadKeys {
            referenced_ids,
            subject_refs: tag.find_all(&msg.subject),
            sender: msg.sender_address(),
        }
    }
}

/// Recognises and formats ticket references such as `PD-42` and the subject tag `[PD-42]`.
#[derive(Debug, Clone)]
pub struct SubjectTag {
    prefix: String,
    re: Regex,
}

impl SubjectTag {
    /// A tag for `prefix` (letters, digits; validated by the config).
    pub fn new(prefix: &str) -> SubjectTag {
        // `[PD-42]` anywhere in the subject; digits only, bounded, so `[PD-42x]` or
        // `[PD-0042...]` lookalikes with junk do not match.
        let re = Regex::new(&format!(
            r"(?i)\[{}-([1-9][0-9]{{0,17}})\]",
            regex::escape(prefix)
        ))
        .expect("escaped prefix is a valid pattern");
        SubjectTag {
            prefix: prefix.to_string(),
            re,
        }
    }

    /// The human-readable reference of ticket `id`, e.g. `PD-42`.
    pub fn reference(&self, id: i64) -> String {
        format!("{}-{id}", self.prefix)
    }

    /// Parse a reference like `PD-42`, `pd-42`, `[PD-42]` or a bare `42` into a ticket id.
    pub fn parse_reference(&self, s: &str) -> Option<i64> {
        let s = s.trim().trim_start_matches('[').trim_end_matches(']');
        let num = match s.split_once('-') {
            Some((p, n)) if p.eq_ignore_ascii_case(&self.prefix) => n,
            Some(_) => return None,
            None => s,
        };
        num.parse().ok().filter(|n| *n > 0)
    }

    /// Every ticket number tagged in `subject`, in order, without duplicates.
    pub fn find_all(&self, subject: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for c in self.re.captures_iter(subject) {
            if let Ok(n) = c[1].parse::<i64>()
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
        out
    }
}

/// A ticket as the threading decision needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketHit {
    /// Ticket id.
    pub ticket_id: i64,
    /// Whether the sender of the new message already took part in this ticket.
    pub sender_is_participant: bool,
}

/// What the store found for a message's [`ThreadKeys`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadLookup {
    /// `(referenced Message-ID, ticket)` for every referenced ID the store knows, in the
    /// order of [`ThreadKeys::referenced_ids`].
    pub by_header: Vec<(String, TicketHit)>,
    /// Tickets that exist for the subject references, in subject order.
    pub by_subject: Vec<TicketHit>,
}

/// How a message was matched to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadMethod {
    /// `In-Reply-To` or `References` named a stored message.
    Headers,
    /// A `[PD-N]` subject tag, from a participant of that ticket.
    SubjectTag,
}

/// The threading decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThreadDecision {
    /// Start a new ticket.
    New {
        /// Why no existing ticket was chosen.
        reason: String,
    },
    /// Append to an existing ticket.
    Existing {
        /// The ticket.
        ticket_id: i64,
        /// Which method matched.
        method: ThreadMethod,
        /// The evidence, e.g. `In-Reply-To/References <abc@example.org>`.
        reason: String,
    },
}

/// Decide from the keys and what the store found. Header matches win (they name an exact
/// message); a subject tag only counts when the sender already took part in that ticket,
/// so a stranger who writes `[PD-1]` in a subject cannot add to ticket 1.
pub fn decide(keys: &ThreadKeys, lookup: &ThreadLookup, tag: &SubjectTag) -> ThreadDecision {
    if let Some((id, hit)) = lookup.by_header.first() {
        return ThreadDecision::Existing {
            ticket_id: hit.ticket_id,
            method: ThreadMethod::Headers,
            reason: format!("In-Reply-To/References <{id}>"),
        };
    }
    if let Some(hit) = lookup.by_subject.iter().find(|h| h.sender_is_participant) {
        return ThreadDecision::Existing {
            ticket_id: hit.ticket_id,
            method: ThreadMethod::SubjectTag,
            reason: format!(
                "subject tag [{}] from a participant",
                tag.reference(hit.ticket_id)
            ),
        };
    }
    let reason = if let Some(hit) = lookup.by_subject.first() {
        format!(
            "subject tag [{}] ignored: sender is not a participant of that ticket",
            tag.reference(hit.ticket_id)
        )
    } else if !keys.subject_refs.is_empty() {
        "subject tag names no existing ticket".to_string()
    } else if !keys.referenced_ids.is_empty() {
        "referenced messages are unknown".to_string()
    } else {
        "no thread references".to_string()
    };
    ThreadDecision::New { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_tag_matching() {
        let t = SubjectTag::new("PD");
        assert_eq!(
            t.find_all("Re: [PD-42] printer [pd-7] [PD-42]"),
            vec![42, 7]
        );
        assert!(
            t.find_all("[PD-0] [PD-x] [XPD-3 [PD-99999999999999999999]")
                .is_empty()
        );
        assert_eq!(t.parse_reference("PD-42"), Some(42));
        assert_eq!(t.parse_reference("[pd-5]"), Some(5));
        assert_eq!(t.parse_reference("9"), Some(9));
        assert_eq!(t.parse_reference("XX-9"), None);
    }

    #[test]
    fn stranger_with_subject_tag_gets_new_ticket() {
        let t = SubjectTag::new("PD");
        let keys = ThreadKeys {
            subject_refs: vec![1],
            ..ThreadKeys::default()
        };
        let lookup = ThreadLookup {
            by_subject: vec![TicketHit {
                ticket_id: 1,
                sender_is_participant: false,
            }],
            ..ThreadLookup::default()
        };
        assert!(matches!(
            decide(&keys, &lookup, &t),
            ThreadDecision::New { .. }
        ));
    }

    #[test]
    fn header_match_beats_subject() {
        let t = SubjectTag::new("PD");
        let hit = |id| TicketHit {
            ticket_id: id,
            sender_is_participant: true,
        };
        let lookup = ThreadLookup {
            by_header: vec![("m@x".into(), hit(3))],
            by_subject: vec![hit(1)],
        };
        match decide(&ThreadKeys::default(), &lookup, &t) {
            ThreadDecision::Existing {
                ticket_id, method, ..
            } => {
                assert_eq!((ticket_id, method), (3, ThreadMethod::Headers));
            }
            d => panic!("{d:?}"),
        }
    }
}
