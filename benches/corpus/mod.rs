//! A deterministic generator of realistic support mail for benchmarks: new requests (plain,
//! HTML alternative, with 20–200 KB attachments), follow-ups by In-Reply-To (quoting the
//! message they answer, in English, German or Outlook style) and by subject tag (signed
//! "Sent from my iPhone"), autoreplies, and bounces of support's acknowledgements (RFC 3464
//! reports and qmail-style text). Messages are meant to be processed in order: reply
//! targets and ticket numbers assume that.

/// Small deterministic PRNG (xorshift64*), so every run benchmarks the same mail.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "printer",
    "invoice",
    "login",
    "password",
    "account",
    "server",
    "error",
    "please",
    "urgent",
    "since",
    "yesterday",
    "cannot",
    "access",
    "report",
    "the",
    "our",
    "team",
    "shipment",
    "refund",
    "license",
    "update",
    "broken",
    "page",
    "thanks",
    "again",
    "help",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let s: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect();
    let mut out = s.join(" ");
    out.push('.');
    out
}

fn body(rng: &mut Rng) -> String {
    let lines = 3 + rng.below(12);
    (0..lines)
        .map(|_| {
            let words = 6 + rng.below(8) as usize;
            sentence(rng, words)
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

struct Sent {
    message_id: String,
    ticket: u64,
    from: String,
    subject: String,
}

/// `n` messages; about 70 % open tickets, 20 % follow up (half by `In-Reply-To`, quoting
/// in English, German or Outlook style; half by subject tag), 5 % are autoreplies and 5 %
/// bounces (an RFC 3464 report or a qmail-style text).
pub fn generate(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    let mut sent: Vec<Sent> = Vec::new();
    let mut tickets = 0u64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let roll = rng.below(100);
        let date = format!(
            "Thu, {} Nov 2026 {:02}:{:02}:00 +0000",
            1 + i % 28,
            i % 24,
            i % 60
        );
        let mid = format!("gen-{seed}-{i}@client{}.example.org", i % 97);
        let msg = if sent.is_empty() || roll < 70 {
            tickets += 1;
            let from = format!(
                "user{}@customer{}.example.com",
                rng.below(5000),
                rng.below(300)
            );
            let subject = sentence(&mut rng, 4);
            let text = body(&mut rng);
            let head = format!(
                "Return-Path: <{from}>\r\nFrom: Customer {i} <{from}>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\nDate: {date}\r\nMIME-Version: 1.0\r\n"
            );
            let kind = rng.below(100);
            let m = if kind < 60 {
                format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n")
            } else if kind < 85 {
                format!(
                    "{head}Content-Type: multipart/alternative; boundary=\"b{i}\"\r\n\r\n--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{}</p></body></html>\r\n--b{i}--\r\n",
                    text.replace("\r\n", "</p><p>")
                )
            } else {
                let size = 20_000 + rng.below(180_000) as usize;
                let data: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
                format!(
                    "{head}Content-Type: multipart/mixed; boundary=\"m{i}\"\r\n\r\n--m{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--m{i}\r\nContent-Type: application/pdf; name=\"scan-{i}.pdf\"\r\nContent-Disposition: attachment; filename=\"scan-{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--m{i}--\r\n",
                    base64(&data)
                )
            };
            sent.push(Sent {
                message_id: mid.clone(),
                ticket: tickets,
                from,
                subject,
            });
            m
        } else {
            let target = &sent[rng.below(sent.len() as u64) as usize];
            let text = body(&mut rng);
            if roll < 80 {
                // As mail clients reply: the new text, a quote header, the quoted message;
                // in the English, German and Outlook forms.
                let quote = match i % 3 {
                    0 => format!(
                        "On {date}, Support <support@example.com> wrote:\r\n> Hello,\r\n>\r\n> about \"{}\": could you send us the exact error message?\r\n>\r\n> Regards,\r\n> Support\r\n",
                        target.subject
                    ),
                    1 => format!(
                        "Am {date} schrieb Support <support@example.com>:\r\n> Hallo,\r\n>\r\n> zu \"{}\": können Sie uns die genaue Fehlermeldung schicken?\r\n>\r\n> Viele Grüße\r\n> Support\r\n\r\nVon meinem iPhone gesendet\r\n",
                        target.subject
                    ),
                    _ => format!(
                        "-----Original Message-----\r\nFrom: Support <support@example.com>\r\nSent: {date}\r\nTo: {}\r\nSubject: {}\r\n\r\nHello,\r\n\r\ncould you send us the exact error message?\r\n\r\nRegards,\r\nSupport\r\n",
                        target.from, target.subject
                    ),
                };
                format!(
                    "From: <{}>\r\nTo: support@example.com\r\nSubject: Re: {}\r\nMessage-ID: <{mid}>\r\nIn-Reply-To: <{}>\r\nReferences: <{}>\r\nDate: {date}\r\n\r\n{text}\r\n\r\n{quote}",
                    target.from, target.subject, target.message_id, target.message_id
                )
            } else if roll < 90 {
                format!(
                    "From: <{}>\r\nTo: support@example.com\r\nSubject: Re: [PD-{}] {}\r\nMessage-ID: <{mid}>\r\nDate: {date}\r\n\r\n{text}\r\n\r\nSent from my iPhone\r\n",
                    target.from, target.ticket, target.subject
                )
            } else if roll < 95 {
                format!(
                    "Return-Path: <>\r\nFrom: <{}>\r\nTo: support@example.com\r\nSubject: Automatic reply: {}\r\nMessage-ID: <{mid}>\r\nIn-Reply-To: <{}>\r\nAuto-Submitted: auto-replied\r\nDate: {date}\r\n\r\nI am out of the office until Monday.\r\n",
                    target.from, target.subject, target.message_id
                )
            } else if i % 2 == 0 {
                // A bounce of support's acknowledgement: an RFC 3464 report.
                let ack = format!("ack-{i}@example.com");
                format!(
                    "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\nTo: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{mid}>\r\nAuto-Submitted: auto-replied\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r{i}\"\r\n\r\n--r{i}\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message to <{0}>.\r\n\r\n<{0}>: host mx.customer.example.com said: 550 5.1.1 <{0}>: Recipient address rejected: User unknown\r\n\r\n--r{i}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; {0}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--r{i}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\nTo: {0}\r\nSubject: Re: {1}\r\nMessage-ID: <{ack}>\r\n\r\n--r{i}--\r\n",
                    target.from, target.subject
                )
            } else {
                // The same as a plain-text bounce, the way qmail words it.
                format!(
                    "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.com\r\nTo: support@example.com\r\nSubject: failure notice\r\nMessage-ID: <{mid}>\r\nDate: {date}\r\n\r\nHi. This is the qmail-send program at mx.example.com.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<{0}>:\r\n192.0.2.25 does not like recipient.\r\nRemote host said: 550 5.1.1 mailbox unavailable\r\nGiving up on 192.0.2.25.\r\n\r\n--- Below this line is a copy of the message.\r\n\r\nReturn-Path: <support@example.com>\r\nFrom: support@example.com\r\nTo: {0}\r\nSubject: Re: {1}\r\nMessage-ID: <ack-{i}@example.com>\r\n\r\nWe received your request.\r\n",
                    target.from, target.subject
                )
            }
        };
        out.push(msg.into_bytes());
    }
    out
}

/// The messages as one mbox file (mboxrd escaping).
pub fn to_mbox(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(b"From bench@example.org Thu Nov  5 10:00:00 2026\n");
        for line in m.split_inclusive(|&b| b == b'\n') {
            let rest = line
                .iter()
                .position(|&b| b != b'>')
                .map(|i| &line[i..])
                .unwrap_or(b"");
            if rest.starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        if !m.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}
