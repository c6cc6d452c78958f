//! A deterministic generator of hostile mail, shared by `tests/hostile.rs` (the real binary
//! on every message: exit status, peak memory, nothing lost) and `benches/hostile.rs` (the
//! same set, timed on the release build).
//!
//! Nothing is committed and nothing is written to disk: [`cases`] returns a list of
//! [`Case`]s, each a family name, a variant description and a builder that produces its
//! bytes on demand from its own seed. A runner builds a message, feeds it to `postdesk`,
//! and drops it, so the 25 MB giants are never all in memory at once. The same seed gives
//! the same bytes on every run and every machine.
//!
//! Every message is different from every other byte for byte, and in its Message-ID where
//! it has a usable one. Only a few differ in nothing but white space or transit header
//! fields (`Received`): the white-space-only inputs of `empty`, the `Received`-only ones
//! of `headers-only`; a deduplication that ignores those (as issue 12 point 2 asks) may
//! call them redeliveries of one another.
//!
//! The families (see [`FAMILIES`]) are the inputs issue 12 lists: MIME bombs (depth, part
//! count, attachment count, total attachment size), 1 MB header lines, 10,000+ References,
//! millions of header fields, huge recipient lists, bad and unknown charsets, truncated
//! base64 / quoted-printable, NUL bytes, bare CR line endings, raw 8-bit headers, a
//! leading blank line or byte-order mark, terminal control sequences in subjects, names and
//! file names, quoted local parts, empty input, header-only messages and huge one-line
//! bodies. Each comes in several sizes and variants.

// Shared by a test and a bench, which each use only part of it.
#![allow(dead_code)]

use std::fmt::Write as _;

/// One mebibyte. The project's "25 MB" message-size limit is 25 MiB.
pub const MIB: usize = 1 << 20;

/// postdesk's default `limits.max_message_size` (25 MiB). Messages meant to be parsed stay
/// under it; a few go over it on purpose.
pub const SIZE_LIMIT: usize = 25 * MIB;

/// Cases at least this large are "giants": few, and in the default test run only some.
pub const GIANT: usize = 4 * MIB;

/// Every family name, in report order.
pub const FAMILIES: &[&str] = &[
    "mime-deep",
    "mime-parts",
    "mime-attachments",
    "attachment-size",
    "header-long-line",
    "references-many",
    "header-fields-many",
    "recipients-many",
    "charset-bad",
    "encoding-truncated",
    "nul-bytes",
    "bare-cr",
    "header-8bit",
    "leading-junk",
    "control-chars",
    "quoted-local",
    "empty",
    "headers-only",
    "body-long-line",
];

/// The seed of the set the test and the bench use.
pub const SEED: u64 = 12;

/// Small deterministic PRNG (SplitMix64): each case gets its own, so a case's bytes do not
/// depend on which other cases were built before it.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// `n` random bytes, all 256 values.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A lower-case ASCII word of `lo..=hi` letters.
    pub fn word(&mut self, lo: usize, hi: usize) -> String {
        let n = self.range(lo, hi);
        (0..n)
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }

    /// Some words of plain text, `approx` bytes long or a little more.
    pub fn text(&mut self, approx: usize) -> String {
        let mut s = String::with_capacity(approx + 16);
        while s.len() < approx {
            let w = *self.pick(WORDS);
            s.push_str(w);
            s.push(if self.chance(8) { '\n' } else { ' ' });
        }
        s
    }
}

const WORDS: &[&str] = &[
    "printer", "invoice", "cannot", "login", "since", "monday", "please", "help", "urgent", "the",
    "server", "is", "down", "again", "refund", "order", "broken", "thanks",
];

/// What a builder gets: the case's Message-ID (unique in the set) and its own RNG.
pub struct Ctx {
    pub id: String,
    pub rng: Rng,
}

type Build = Box<dyn Fn(&mut Ctx) -> Vec<u8> + Send + Sync>;

/// One hostile message: its family, what variant it is, and how to build it.
pub struct Case {
    pub family: &'static str,
    pub variant: String,
    /// Roughly how many bytes the builder produces (exact size: `bytes().len()`), known
    /// without building it, so runners can schedule and subset without building everything.
    pub approx_size: usize,
    /// For an ordinary message made hostile only by its framing (bare CR, a leading BOM):
    /// what its subject and sender are. If it is stored in a ticket, these must be what the
    /// store has (issue 12 point 9: not an empty or garbled ticket).
    pub expect: Option<Expect>,
    seed: u64,
    id: String,
    build: Build,
}

/// The subject and sender address of an ordinary message (see [`Case::expect`]).
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub subject: &'static str,
    pub from: &'static str,
}

impl Case {
    /// The message. Deterministic: the same bytes on every call.
    pub fn bytes(&self) -> Vec<u8> {
        let mut cx = Ctx {
            id: self.id.clone(),
            rng: Rng::new(self.seed),
        };
        (self.build)(&mut cx)
    }

    /// A giant (at least [`GIANT`] bytes): few of these, see [`GIANT`].
    pub fn giant(&self) -> bool {
        self.approx_size >= GIANT
    }
}

/// Collects the cases of every family.
struct Set {
    seed: u64,
    cases: Vec<Case>,
}

impl Set {
    fn add(
        &mut self,
        family: &'static str,
        variant: impl Into<String>,
        approx_size: usize,
        build: impl Fn(&mut Ctx) -> Vec<u8> + Send + Sync + 'static,
    ) {
        self.add_expecting(family, variant, approx_size, None, build);
    }

    fn add_expecting(
        &mut self,
        family: &'static str,
        variant: impl Into<String>,
        approx_size: usize,
        expect: Option<Expect>,
        build: impl Fn(&mut Ctx) -> Vec<u8> + Send + Sync + 'static,
    ) {
        let index = self.cases.len();
        let mut mix = Rng::new(self.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let seed = mix.next_u64();
        self.cases.push(Case {
            family,
            variant: variant.into(),
            approx_size,
            expect,
            seed,
            id: format!("{family}.{index}.{:08x}@hostile.example", seed as u32),
            build: Box::new(build),
        });
    }
}

/// The whole hostile set for `seed` (use [`SEED`]): more than 1,000 cases.
pub fn cases(seed: u64) -> Vec<Case> {
    let mut set = Set {
        seed,
        cases: Vec::new(),
    };
    mime_deep(&mut set);
    mime_parts(&mut set);
    mime_attachments(&mut set);
    attachment_size(&mut set);
    header_long_line(&mut set);
    references_many(&mut set);
    header_fields_many(&mut set);
    recipients_many(&mut set);
    charset_bad(&mut set);
    encoding_truncated(&mut set);
    nul_bytes(&mut set);
    bare_cr(&mut set);
    header_8bit(&mut set);
    leading_junk(&mut set);
    control_chars(&mut set);
    quoted_local(&mut set);
    empty(&mut set);
    headers_only(&mut set);
    body_long_line(&mut set);
    set.cases
}

// ---------------------------------------------------------------------------------------
// Building blocks

fn push(v: &mut Vec<u8>, s: impl AsRef<[u8]>) {
    v.extend_from_slice(s.as_ref());
}

/// The usual header fields of an ordinary message, CRLF line endings, no blank line yet.
fn head(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Hostile Sender <sender@hostile.example>\r\n\
         To: support@example.com\r\n\
         Subject: {subject}\r\n\
         Date: Thu, 5 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}>\r\n\
         MIME-Version: 1.0\r\n"
    )
    .into_bytes()
}

/// [`head`] + `extra` header lines + blank line + `body`.
fn message(id: &str, subject: &str, extra: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = head(id, subject);
    push(&mut m, extra);
    push(&mut m, "\r\n");
    push(&mut m, body);
    m
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 with CRLF every 76 characters (`wrap` false: one line).
fn base64(data: &[u8], wrap: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 38 + 8);
    let mut col = 0;
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        let quad = [
            B64[(n >> 18) as usize & 63],
            B64[(n >> 12) as usize & 63],
            if chunk.len() > 1 {
                B64[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            if chunk.len() > 2 {
                B64[n as usize & 63]
            } else {
                b'='
            },
        ];
        out.extend_from_slice(&quad);
        col += 4;
        if wrap && col == 76 {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
    }
    if wrap && col > 0 {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Quoted-printable with soft line breaks (`wrap` false: one line however long).
fn quoted_printable(data: &[u8], wrap: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    let mut col = 0;
    for &b in data {
        let plain = (33..=126).contains(&b) && b != b'=' || b == b' ';
        let width = if plain { 1 } else { 3 };
        if wrap && col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if plain {
            out.push(b);
        } else {
            let _ = write!(HexSink(&mut out), "={b:02X}");
        }
        col += width;
    }
    out
}

/// `write!` into a byte vector.
struct HexSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for HexSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// An RFC 2047 encoded word of `bytes` in `charset`, base64 (`b`) or Q encoding.
fn encoded_word(charset: &str, b: bool, bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("=?{charset}?{}?", if b { "B" } else { "Q" }).into_bytes();
    if b {
        push(&mut out, base64(bytes, false));
    } else {
        for &c in bytes {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else {
                push(&mut out, format!("={c:02X}"));
            }
        }
    }
    push(&mut out, "?=");
    out
}

/// A multipart/mixed message: `parts` are complete MIME parts (header lines, blank line,
/// content), put between boundaries; `closed` adds the closing boundary.
fn multipart(id: &str, subject: &str, parts: &[Vec<u8>], closed: bool) -> Vec<u8> {
    let mut m = message(
        id,
        subject,
        b"Content-Type: multipart/mixed; boundary=\"=_hostile\"\r\n",
        b"This is a multi-part message in MIME format.\r\n",
    );
    for p in parts {
        push(&mut m, "--=_hostile\r\n");
        push(&mut m, p);
        push(&mut m, "\r\n");
    }
    if closed {
        push(&mut m, "--=_hostile--\r\n");
    }
    m
}

fn text_part(body: &str) -> Vec<u8> {
    let mut p = b"Content-Type: text/plain; charset=utf-8\r\n\r\n".to_vec();
    push(&mut p, body);
    p
}

fn attachment_part(name: &str, ctype: &str, encoding: &str, content: &[u8]) -> Vec<u8> {
    let mut p = format!(
        "Content-Type: {ctype}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    .into_bytes();
    match encoding {
        "base64" => push(&mut p, base64(content, true)),
        "quoted-printable" => push(&mut p, quoted_printable(content, true)),
        _ => push(&mut p, content),
    }
    p
}

/// Replace every CRLF in `m` with `eol`.
fn with_eol(m: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.len());
    let mut i = 0;
    while i < m.len() {
        if m[i] == b'\r' && m.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(eol);
            i += 2;
        } else {
            out.push(m[i]);
            i += 1;
        }
    }
    out
}

fn human(n: usize) -> String {
    if n >= MIB {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n}")
    }
}

// ---------------------------------------------------------------------------------------
// MIME bombs

/// Multiparts and message/rfc822 parts nested thousands deep, closed and unclosed.
fn mime_deep(set: &mut Set) {
    #[derive(Clone, Copy)]
    enum Kind {
        Mixed,
        Alternative,
        Rfc822,
        Alternating,
    }
    for (kind, kname) in [
        (Kind::Mixed, "multipart/mixed"),
        (Kind::Alternative, "multipart/alternative"),
        (Kind::Rfc822, "message/rfc822"),
        (Kind::Alternating, "mixed inside rfc822 inside mixed"),
    ] {
        for depth in [2usize, 8, 32, 100, 256, 1000, 5000, 20_000, 50_000, 100_000] {
            for closed in [true, false] {
                // A message/rfc822 chain has no boundaries to leave open; 100,000 levels
                // (7.6 to 15 MB) only closed, to keep the giants few.
                if !closed && (matches!(kind, Kind::Rfc822) || depth == 100_000) {
                    continue;
                }
                let per_level = if matches!(kind, Kind::Rfc822) {
                    110
                } else {
                    75
                };
                set.add(
                    "mime-deep",
                    format!(
                        "{kname} nested {depth} deep{}",
                        if closed { "" } else { ", never closed" }
                    ),
                    depth * per_level + 400,
                    move |cx| {
                        let mut m = head(&cx.id, "deeply nested");
                        let mut closers: Vec<String> = Vec::new();
                        for level in 0..depth {
                            let rfc822 = match kind {
                                Kind::Rfc822 => true,
                                Kind::Alternating => level % 2 == 1,
                                _ => false,
                            };
                            if rfc822 {
                                push(&mut m, "Content-Type: message/rfc822\r\n\r\n");
                                push(
                                    &mut m,
                                    format!(
                                        "From: level{level}@hostile.example\r\nSubject: level {level}\r\nMessage-ID: <{level}.{}>\r\n",
                                        cx.id
                                    ),
                                );
                            } else {
                                let sub = if matches!(kind, Kind::Alternative) {
                                    "alternative"
                                } else {
                                    "mixed"
                                };
                                push(
                                    &mut m,
                                    format!(
                                        "Content-Type: multipart/{sub}; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
                                    ),
                                );
                                closers.push(format!("\r\n--b{level}--\r\n"));
                            }
                        }
                        push(&mut m, "Content-Type: text/plain\r\n\r\nthe bottom\r\n");
                        if closed {
                            for c in closers.iter().rev() {
                                push(&mut m, c);
                            }
                        }
                        m
                    },
                );
            }
        }
    }
}

/// Flat multiparts with 10 to 250,000 parts (the default part limit is 1,000), and parts
/// spread over many sibling multiparts.
fn mime_parts(set: &mut Set) {
    for count in [
        10usize, 100, 999, 1000, 1001, 2000, 10_000, 100_000, 250_000,
    ] {
        for (style, per) in [("bare", 14), ("typed", 95), ("empty", 14)] {
            if style == "typed" && count > 100_000 {
                continue;
            }
            set.add(
                "mime-parts",
                format!("{count} {style} parts"),
                count * per + 500,
                move |cx| {
                    let mut m = message(
                        &cx.id,
                        &format!("{count} parts"),
                        b"Content-Type: multipart/mixed; boundary=\"p\"\r\n",
                        b"",
                    );
                    for i in 0..count {
                        match style {
                            "bare" => push(&mut m, "--p\r\n\r\nx\r\n"),
                            "typed" => push(
                                &mut m,
                                format!(
                                    "--p\r\nContent-Type: text/plain; name=\"p{i}.txt\"\r\nContent-Disposition: attachment\r\n\r\n{i}\r\n"
                                ),
                            ),
                            _ => push(&mut m, "--p\r\n"),
                        }
                    }
                    push(&mut m, "--p--\r\n");
                    m
                },
            );
        }
    }
    // 100,000 parts in 100 sibling multiparts of 1,000 each: no single multipart is over
    // the part limit, the message is.
    for (groups, per_group) in [(10usize, 1000usize), (100, 1000), (1000, 100)] {
        set.add(
            "mime-parts",
            format!("{groups} sibling multiparts of {per_group} parts"),
            groups * (per_group * 14 + 80) + 500,
            move |cx| {
                let mut m = message(
                    &cx.id,
                    "siblings",
                    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n",
                    b"",
                );
                for g in 0..groups {
                    push(
                        &mut m,
                        format!(
                            "--outer\r\nContent-Type: multipart/mixed; boundary=\"g{g}\"\r\n\r\n"
                        ),
                    );
                    for _ in 0..per_group {
                        push(&mut m, format!("--g{g}\r\n\r\nx\r\n"));
                    }
                    push(&mut m, format!("--g{g}--\r\n"));
                }
                push(&mut m, "--outer--\r\n");
                m
            },
        );
    }
}

const ATTACHMENT_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "application/octet-stream",
    "text/plain",
    "application/zip",
    "message/rfc822",
];

/// 1 to 999 attachments of random small content, in every transfer encoding.
fn mime_attachments(set: &mut Set) {
    for count in [1usize, 2, 5, 10, 50, 100, 500, 999] {
        for encoding in ["base64", "quoted-printable", "7bit", "binary", "x-uuencode"] {
            set.add(
                "mime-attachments",
                format!("{count} attachments, {encoding}"),
                count * 2200 + 600,
                move |cx| {
                    let mut parts = vec![text_part("See the attachments.\r\n")];
                    for i in 0..count {
                        let ctype = *cx.rng.pick(ATTACHMENT_TYPES);
                        let size = cx.rng.below(1500);
                        let content = if encoding == "7bit" || ctype == "message/rfc822" {
                            format!(
                                "From: inner{i}@hostile.example\r\nSubject: inner {i}\r\n\r\n{}",
                                cx.rng.text(size)
                            )
                            .into_bytes()
                        } else {
                            cx.rng.bytes(size)
                        };
                        let name = format!(
                            "{}-{i}.{}",
                            cx.rng.word(1, 12),
                            cx.rng.pick(&["pdf", "png", "bin", "txt", "zip", "eml"])
                        );
                        parts.push(attachment_part(&name, ctype, encoding, &content));
                    }
                    multipart(&cx.id, &format!("{count} attachments"), &parts, true)
                },
            );
        }
    }
    // Random mixes: duplicate names, no names, inline parts, attachments inside
    // alternatives, missing Content-Type.
    for i in 0..40 {
        set.add("mime-attachments", format!("random mix #{i}"), 60_000, |cx| {
            let n = cx.rng.range(1, 40);
            let mut parts = vec![text_part(&cx.rng.text(200))];
            for k in 0..n {
                let n = cx.rng.below(3000);
                let content = cx.rng.bytes(n);
                let mut p = Vec::new();
                match cx.rng.below(5) {
                    0 => push(&mut p, "Content-Type: application/pdf; name=\"same.pdf\"\r\n"),
                    1 => push(&mut p, "Content-Disposition: attachment\r\n"),
                    2 => push(
                        &mut p,
                        format!("Content-Type: image/png\r\nContent-Disposition: inline; filename=\"i{k}.png\"\r\nContent-ID: <c{k}@x>\r\n"),
                    ),
                    3 => push(&mut p, format!("Content-Disposition: attachment; filename=\"n{k}\"\r\n")),
                    _ => {}
                }
                push(&mut p, "Content-Transfer-Encoding: base64\r\n\r\n");
                push(&mut p, base64(&content, true));
                parts.push(p);
            }
            multipart(&cx.id, "mixed attachments", &parts, true)
        });
    }
}

/// Huge total attachment size: single attachments of 100 KiB to 18 MiB, 18 × 1 MiB,
/// 999 × 18 KiB, raw 8-bit binary, quoted-printable; just over the size limit; and over
/// the 64 MiB quarantine hard cap.
fn attachment_size(set: &mut Set) {
    for (size, encoding) in [
        (100 * 1024, "base64"),
        (512 * 1024, "base64"),
        (MIB, "base64"),
        (MIB, "quoted-printable"),
        (MIB, "binary"),
        (2 * MIB, "quoted-printable"),
        (5 * MIB, "base64"),
        (18 * MIB, "base64"),
        (24 * MIB, "binary"),
    ] {
        let approx = match encoding {
            "base64" => size * 4 / 3 + size / 38,
            // text-like content: a few escapes and soft breaks
            "quoted-printable" => size + size / 20,
            _ => size,
        } + 1000;
        set.add(
            "attachment-size",
            format!("one {} attachment, {encoding}", human(size)),
            approx,
            move |cx| {
                // Random bytes for base64/binary; text-like bytes for quoted-printable so
                // that it stays about the size it would be in the wild.
                let content = if encoding == "quoted-printable" {
                    cx.rng.text(size).into_bytes()
                } else {
                    cx.rng.bytes(size)
                };
                multipart(
                    &cx.id,
                    "big attachment",
                    &[
                        text_part("Attached.\r\n"),
                        attachment_part("big.bin", "application/octet-stream", encoding, &content),
                    ],
                    true,
                )
            },
        );
    }
    for (count, each) in [(200usize, 16 * 1024), (18, MIB), (999, 18 * 1024)] {
        set.add(
            "attachment-size",
            format!("{count} attachments of {} each, base64", human(each)),
            count * (each * 4 / 3 + each / 38 + 200),
            move |cx| {
                let mut parts = vec![text_part("Many big ones.\r\n")];
                for i in 0..count {
                    let content = cx.rng.bytes(each);
                    parts.push(attachment_part(
                        &format!("part{i}.bin"),
                        "application/octet-stream",
                        "base64",
                        &content,
                    ));
                }
                multipart(&cx.id, "many big attachments", &parts, true)
            },
        );
    }
    // Just over the size limit (quarantined as too large, parsed not at all) and over the
    // hard cap (only the headers are kept).
    for (size, label) in [
        (SIZE_LIMIT + 1, "just over the 25 MiB limit"),
        (65 * MIB, "over the 64 MiB quarantine hard cap"),
    ] {
        set.add("attachment-size", label, size, move |cx| {
            let mut m = message(
                &cx.id,
                "too large",
                b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
                b"",
            );
            let line =
                b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
            while m.len() + line.len() <= size {
                push(&mut m, line);
            }
            m.resize(size, b'A');
            m
        });
    }
}

// ---------------------------------------------------------------------------------------
// Header floods

/// A single header line of 64 KiB to 4 MiB, in the fields the pipeline reads, unfolded or
/// folded every 70 characters.
fn header_long_line(set: &mut Set) {
    const FIELDS: &[&str] = &[
        "Subject",
        "Subject (encoded words)",
        "X-Long",
        "From display name",
        "To address list",
        "Content-Type boundary",
        "Message-ID",
        "References token",
    ];
    for size in [64 * 1024usize, 256 * 1024, MIB, 4 * MIB] {
        for &field in FIELDS {
            for folded in [false, true] {
                if size == 4 * MIB
                    && (folded
                        || !matches!(
                            field,
                            "Subject" | "X-Long" | "To address list" | "References token"
                        ))
                {
                    continue;
                }
                set.add(
                    "header-long-line",
                    format!(
                        "{field}, {} {}",
                        human(size),
                        if folded { "folded" } else { "one line" }
                    ),
                    size + 600,
                    move |cx| long_header(cx, field, size, folded),
                );
            }
        }
    }
}

fn long_header(cx: &mut Ctx, field: &str, size: usize, folded: bool) -> Vec<u8> {
    // The long value, then folded if asked (a space every 70 bytes becomes CRLF + space).
    let fold = |v: Vec<u8>| -> Vec<u8> {
        if !folded {
            return v;
        }
        let mut out = Vec::with_capacity(v.len() + v.len() / 30);
        for chunk in v.chunks(70) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n ");
        }
        out
    };
    let words = |cx: &mut Ctx, n: usize| cx.rng.text(n).replace('\n', " ").into_bytes();
    let (mut m, body): (Vec<u8>, &[u8]) = match field {
        "Subject" => {
            let mut m = Vec::new();
            push(
                &mut m,
                format!(
                    "From: a@hostile.example\r\nTo: support@example.com\r\nMessage-ID: <{}>\r\nSubject: ",
                    cx.id
                ),
            );
            push(&mut m, fold(words(cx, size)));
            push(&mut m, "\r\n");
            (m, b"body\r\n")
        }
        "Subject (encoded words)" => {
            let mut v = Vec::new();
            while v.len() < size {
                push(
                    &mut v,
                    encoded_word("utf-8", cx.rng.chance(50), "héllo wörld ".as_bytes()),
                );
                v.push(b' ');
            }
            let mut m = format!(
                "From: a@hostile.example\r\nMessage-ID: <{}>\r\nSubject: ",
                cx.id
            )
            .into_bytes();
            push(&mut m, fold(v));
            push(&mut m, "\r\n");
            (m, b"body\r\n")
        }
        "X-Long" => {
            let mut m = head(&cx.id, "long X- field");
            push(&mut m, "X-Long: ");
            push(&mut m, fold(words(cx, size)));
            push(&mut m, "\r\n");
            (m, b"body\r\n")
        }
        "From display name" => {
            let mut m =
                format!("Message-ID: <{}>\r\nSubject: long name\r\nFrom: \"", cx.id).into_bytes();
            push(&mut m, fold(words(cx, size)));
            push(&mut m, "\" <long@hostile.example>\r\n");
            (m, b"body\r\n")
        }
        "To address list" => {
            let mut v = Vec::new();
            let mut i = 0;
            while v.len() < size {
                push(&mut v, format!("r{i}@hostile.example, "));
                i += 1;
            }
            let mut m = format!(
                "From: a@hostile.example\r\nSubject: many recipients\r\nMessage-ID: <{}>\r\nTo: ",
                cx.id
            )
            .into_bytes();
            push(&mut m, fold(v));
            push(&mut m, "support@example.com\r\n");
            (m, b"body\r\n")
        }
        "Content-Type boundary" => {
            let boundary = cx.rng.word(size, size);
            let mut m = head(&cx.id, "long boundary");
            push(&mut m, "Content-Type: multipart/mixed; boundary=\"");
            push(&mut m, fold(boundary.clone().into_bytes()));
            push(&mut m, "\"\r\n\r\n--");
            push(&mut m, &boundary);
            push(&mut m, "\r\nContent-Type: text/plain\r\n\r\nhello\r\n--");
            push(&mut m, &boundary);
            push(&mut m, "--\r\n");
            (m, b"")
        }
        "Message-ID" => {
            let mut m = b"From: a@hostile.example\r\nSubject: long id\r\nMessage-ID: <".to_vec();
            push(&mut m, &cx.id);
            push(&mut m, ".");
            push(&mut m, fold(cx.rng.word(size, size).into_bytes()));
            push(&mut m, "@hostile.example>\r\n");
            (m, b"body\r\n")
        }
        _ => {
            let mut m = head(&cx.id, "Re: long reference");
            push(&mut m, "References: <");
            push(&mut m, fold(cx.rng.word(size, size).into_bytes()));
            push(&mut m, "@hostile.example>\r\n");
            (m, b"body\r\n")
        }
    };
    if !body.is_empty() {
        push(&mut m, "\r\n");
        push(&mut m, body);
    }
    m
}

/// References and In-Reply-To with 100 to 200,000 entries: one line, folded, duplicated,
/// malformed.
fn references_many(set: &mut Set) {
    for count in [100usize, 1000, 10_000, 50_000, 200_000] {
        for layout in [
            "one line",
            "folded",
            "in In-Reply-To",
            "both fields",
            "all the same id",
            "no angle brackets",
        ] {
            if count == 200_000 && !matches!(layout, "one line" | "folded") {
                continue;
            }
            set.add(
                "references-many",
                format!("{count} entries, {layout}"),
                count * 42 + 600,
                move |cx| {
                    let mut list = Vec::with_capacity(count * 42);
                    for i in 0..count {
                        let entry = match layout {
                            "all the same id" => "<same@elsewhere.example>".to_string(),
                            "no angle brackets" => {
                                format!("ref{i}.{}@elsewhere.example", cx.rng.word(4, 8))
                            }
                            _ => format!("<ref{i}.{}@elsewhere.example>", cx.rng.word(4, 8)),
                        };
                        push(&mut list, entry);
                        push(&mut list, if layout == "folded" { "\r\n " } else { " " });
                    }
                    let mut extra = Vec::new();
                    match layout {
                        "in In-Reply-To" => {
                            push(&mut extra, "In-Reply-To: ");
                            push(&mut extra, &list);
                        }
                        "both fields" => {
                            push(&mut extra, "In-Reply-To: ");
                            push(&mut extra, &list);
                            push(&mut extra, "\r\nReferences: ");
                            push(&mut extra, &list);
                        }
                        _ => {
                            push(&mut extra, "References: ");
                            push(&mut extra, &list);
                        }
                    }
                    push(&mut extra, "\r\n");
                    message(&cx.id, "Re: a long thread", &extra, b"Reply.\r\n")
                },
            );
        }
    }
}

/// From 1,000 to 3.1 million header fields: tiny 8-byte fields (3.1 million of them in
/// 24.8 MB, the issue's 733 MB message), the same with LF endings, distinct names,
/// `Received` chains, repeated `Subject` fields.
fn header_fields_many(set: &mut Set) {
    for (style, per, counts) in [
        (
            "tiny `X-a: b`",
            8usize,
            &[1000usize, 10_000, 100_000, 1_000_000, 3_100_000][..],
        ),
        ("tiny, LF endings", 7, &[100_000, 3_100_000][..]),
        (
            "distinct names",
            14,
            &[1000, 10_000, 100_000, 1_000_000][..],
        ),
        ("Received chain", 80, &[1000, 10_000, 100_000][..]),
        ("repeated Subject", 16, &[1000, 10_000, 100_000][..]),
        ("repeated Message-ID", 48, &[1000, 10_000][..]),
    ] {
        for &count in counts {
            set.add(
                "header-fields-many",
                format!("{count} fields, {style}"),
                count * per + 400,
                move |cx| {
                    let mut m = head(&cx.id, "many fields");
                    m.reserve(count * per + 64);
                    for i in 0..count {
                        match style {
                            "tiny `X-a: b`" => push(&mut m, "X-a: b\r\n"),
                            "tiny, LF endings" => push(&mut m, "X-a: b\n"),
                            "distinct names" => push(&mut m, format!("X-{i:07}: v\r\n")),
                            "Received chain" => push(
                                &mut m,
                                format!("Received: from h{i}.example by mx.example; Thu, 5 Nov 2026 10:00:00 +0000\r\n"),
                            ),
                            "repeated Subject" => push(&mut m, format!("Subject: s{i}\r\n")),
                            _ => push(&mut m, format!("Message-ID: <{i}.{}>\r\n", cx.id)),
                        }
                    }
                    if style == "tiny, LF endings" {
                        m = with_eol(&m, b"\n");
                        push(&mut m, "\nbody\n");
                    } else {
                        push(&mut m, "\r\nbody\r\n");
                    }
                    m
                },
            );
        }
    }
}

/// To/Cc/Bcc with up to 500,000 recipients: one list, a field per recipient, groups.
fn recipients_many(set: &mut Set) {
    for count in [100usize, 1000, 10_000, 100_000, 500_000] {
        for style in ["To list", "Cc list", "To field each", "group syntax"] {
            if count == 500_000 && style != "To list" {
                continue;
            }
            set.add(
                "recipients-many",
                format!("{count} recipients, {style}"),
                count * 30 + 400,
                move |cx| {
                    let mut m = format!(
                        "From: sender@hostile.example\r\nSubject: to everyone\r\nMessage-ID: <{}>\r\n",
                        cx.id
                    )
                    .into_bytes();
                    match style {
                        "To field each" => {
                            for i in 0..count {
                                push(&mut m, format!("To: user{i}@hostile.example\r\n"));
                            }
                        }
                        _ => {
                            push(&mut m, if style == "Cc list" { "To: support@example.com\r\nCc: " } else { "To: " });
                            if style == "group syntax" {
                                push(&mut m, "Everyone: ");
                            }
                            for i in 0..count {
                                push(&mut m, format!("u{i}@hostile.example,\r\n "));
                            }
                            push(&mut m, "support@example.com");
                            if style == "group syntax" {
                                push(&mut m, ";");
                            }
                            push(&mut m, "\r\n");
                        }
                    }
                    push(&mut m, "\r\nHello all.\r\n");
                    m
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Charsets and transfer encodings

const BAD_CHARSETS: &[&str] = &[
    "x-klingon",
    "utf-7",
    "utf-16",
    "utf-16le",
    "utf-32",
    "ucs-2",
    "iso-2022-jp",
    "gb18030",
    "big5",
    "koi8-r",
    "windows-1252",
    "us-ascii",
    "",
    "\"\"",
    "../../etc/passwd",
    "utf-8'en'",
    "iso-8859-1*",
    "unicode-1-1-utf-7",
    "%s%s%s%n",
    "utf-8; charset=koi8-r",
];

/// Unknown, empty, absurd and mislabelled charsets in bodies, encoded words, names and
/// file names, with random bytes that are not valid in the charset they claim.
fn charset_bad(set: &mut Set) {
    for i in 0..110 {
        set.add("charset-bad", format!("random #{i}"), 4000, |cx| {
            let mut charset = cx.rng.pick(BAD_CHARSETS).to_string();
            if cx.rng.chance(10) {
                charset = cx.rng.word(200, 400);
            }
            let n = cx.rng.range(1, 1500);
            let mut payload = cx.rng.bytes(n);
            if charset.starts_with("iso-2022") {
                // Escape sequences switching sets, some cut short.
                payload.splice(0..0, b"\x1b$B\x1b(\x1b$".iter().copied());
            }
            let place = cx.rng.below(6);
            match place {
                0 => message(
                    &cx.id,
                    "bad charset body",
                    format!("Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n").as_bytes(),
                    &payload,
                ),
                1 => {
                    let mut m = format!("From: a@hostile.example\r\nMessage-ID: <{}>\r\nSubject: ", cx.id).into_bytes();
                    push(&mut m, encoded_word(&charset, cx.rng.chance(50), &payload));
                    push(&mut m, "\r\n\r\nbody\r\n");
                    m
                }
                2 => {
                    let mut m = format!("Message-ID: <{}>\r\nSubject: bad name\r\nFrom: ", cx.id).into_bytes();
                    push(&mut m, encoded_word(&charset, cx.rng.chance(50), &payload));
                    push(&mut m, " <named@hostile.example>\r\n\r\nbody\r\n");
                    m
                }
                3 => {
                    let mut p = b"Content-Type: application/pdf; name=\"".to_vec();
                    push(&mut p, encoded_word(&charset, true, &payload[..payload.len().min(60)]));
                    push(&mut p, "\"\r\nContent-Disposition: attachment; filename*=");
                    push(&mut p, &charset);
                    push(&mut p, "''");
                    for b in payload.iter().take(60) {
                        push(&mut p, format!("%{b:02X}"));
                    }
                    push(&mut p, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
                    push(&mut p, base64(&payload, true));
                    multipart(&cx.id, "bad file name", &[text_part("see file"), p], true)
                }
                4 => message(
                    &cx.id,
                    "bad charset html",
                    format!("Content-Type: text/html; charset=\"{charset}\"\r\nContent-Transfer-Encoding: base64\r\n").as_bytes(),
                    &base64(&[b"<html><body>".as_slice(), &payload, b"</body></html>"].concat(), true),
                ),
                _ => {
                    let mut parts = Vec::new();
                    for _ in 0..cx.rng.range(1, 5) {
                        let cs = cx.rng.pick(BAD_CHARSETS);
                        let mut p = format!("Content-Type: text/plain; charset={cs}\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n").into_bytes();
                        let n = cx.rng.range(1, 500);
                        push(&mut p, quoted_printable(&cx.rng.bytes(n), true));
                        parts.push(p);
                    }
                    multipart(&cx.id, "bad charset parts", &parts, true)
                }
            }
        });
    }
}

/// Base64 and quoted-printable cut short, with junk, without padding; unknown transfer
/// encodings; unterminated encoded words; parts and boundaries cut off.
fn encoding_truncated(set: &mut Set) {
    const KINDS: &[&str] = &[
        "base64 attachment cut mid-quad",
        "base64 attachment with junk characters",
        "base64 without padding or closing boundary",
        "base64 text body cut short",
        "quoted-printable ending in =",
        "quoted-printable ending in =A",
        "quoted-printable with =ZZ and =\\r",
        "quoted-printable line of 100 KiB",
        "unknown transfer encoding",
        "encoded word cut short",
        "message/rfc822 part cut in its header",
        "part cut in its header",
    ];
    for (k, &kind) in KINDS.iter().enumerate() {
        for i in 0..8 {
            let size = [10, 1000, 20_000, 100_000][i % 4];
            set.add(
                "encoding-truncated",
                format!("{kind}, {} (#{i})", human(size)),
                size * 2 + 1000,
                move |cx| truncated(cx, k, size),
            );
        }
    }
}

fn truncated(cx: &mut Ctx, kind: usize, size: usize) -> Vec<u8> {
    let content = cx.rng.bytes(size.max(4));
    let text = cx.rng.text(size);
    let att = |enc: &str, body: &[u8], closed: bool| {
        let mut p = format!(
            "Content-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: {enc}\r\n\r\n"
        )
        .into_bytes();
        push(&mut p, body);
        (p, closed)
    };
    let (part, closed) = match kind {
        0 => {
            // Cut 1 to 3 characters off the last quad (and its line ending).
            let mut b = base64(&content, true);
            while b.last().is_some_and(|&c| c == b'\r' || c == b'\n') {
                b.pop();
            }
            b.truncate(b.len() - cx.rng.range(1, 3));
            att("base64", &b, true)
        }
        1 => {
            let mut b = base64(&content, true);
            for _ in 0..cx.rng.range(1, 20) {
                let at = cx.rng.below(b.len());
                b.insert(at, *cx.rng.pick(b"!*~.\x00\x7f\xff-_ "));
            }
            att("base64", &b, true)
        }
        2 => {
            let mut b = base64(&content, true);
            while b
                .last()
                .is_some_and(|&c| c == b'=' || c == b'\r' || c == b'\n')
            {
                b.pop();
            }
            b.truncate(b.len() - b.len() % 4 + 1);
            att("base64", &b, false)
        }
        3 => {
            return message(
                &cx.id,
                "cut base64 text",
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
                &base64(text.as_bytes(), true)[..(text.len() * 4 / 3).saturating_sub(3).max(1)],
            );
        }
        4 | 5 => {
            let mut b = quoted_printable(text.as_bytes(), true);
            push(&mut b, if kind == 4 { "=" } else { "=A" });
            return message(
                &cx.id,
                "cut quoted-printable",
                b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
                &b,
            );
        }
        6 => {
            let mut b = quoted_printable(text.as_bytes(), true);
            for _ in 0..cx.rng.range(1, 30) {
                let at = cx.rng.below(b.len().max(1));
                let junks: [&[u8]; 6] = [b"=ZZ", b"=\r", b"=\n", b"==", b"=0", b"=\r\r\n"];
                let junk = *cx.rng.pick(&junks);
                b.splice(at..at, junk.iter().copied());
            }
            return message(
                &cx.id,
                "bad quoted-printable",
                b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n",
                &b,
            );
        }
        7 => {
            let long = quoted_printable(cx.rng.text(100 * 1024).as_bytes(), false);
            return message(
                &cx.id,
                "long qp line",
                b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n",
                &long,
            );
        }
        8 => {
            let enc = cx.rng.pick(&[
                "x-uue",
                "base32",
                "8bit, base64",
                "base64; x=y",
                "bïnary",
                "base6",
            ]);
            att(enc, &base64(&content, true), true)
        }
        9 => {
            let mut m = format!(
                "From: a@hostile.example\r\nMessage-ID: <{}>\r\nSubject: ",
                cx.id
            )
            .into_bytes();
            let mut w = encoded_word("utf-8", cx.rng.chance(50), text.as_bytes());
            let cut = cx.rng.range(3, w.len() - 1);
            w.truncate(cut);
            push(&mut m, w);
            push(&mut m, "\r\n\r\nbody\r\n");
            return m;
        }
        10 => {
            let mut p = b"Content-Type: message/rfc822\r\n\r\nFrom: inner@hostile.example\r\nSubject: inner\r\nContent-Type: multipart/mixed; bound".to_vec();
            push(&mut p, cx.rng.word(0, 5));
            (p, false)
        }
        _ => {
            let mut p = b"Content-Type: application/pdf; name=\"cut".to_vec();
            push(&mut p, cx.rng.word(0, 5));
            (p, false)
        }
    };
    let mut m = multipart(
        &cx.id,
        "cut encodings",
        &[text_part("Attached."), part],
        closed,
    );
    if !closed {
        // Cut the trailing CRLF that `multipart` adds after a part, too.
        m.truncate(m.len() - 2);
    }
    m
}

// ---------------------------------------------------------------------------------------
// Bytes a message should not have

/// NUL bytes in header names and values, between headers, in bodies, file names and
/// boundaries, and a body of 1 MiB of NULs.
fn nul_bytes(set: &mut Set) {
    const PLACES: &[&str] = &[
        "subject",
        "from display name",
        "from address",
        "header name",
        "after the Message-ID",
        "a line of its own in the header",
        "body start",
        "body middle",
        "attachment file name",
        "boundary",
        "html body",
    ];
    for (p, &place) in PLACES.iter().enumerate() {
        for i in 0..6 {
            set.add(
                "nul-bytes",
                format!("NUL in {place} (#{i})"),
                4000,
                move |cx| {
                    let nuls = vec![0u8; [1, 2, 17, 100, 1, 1000][i]];
                    nul_in(cx, p, &nuls)
                },
            );
        }
    }
    for size in [64 * 1024usize, MIB] {
        set.add(
            "nul-bytes",
            format!("body of {} NULs", human(size)),
            size + 400,
            move |cx| message(&cx.id, "nothing but NUL", b"", &vec![0u8; size]),
        );
    }
}

fn nul_in(cx: &mut Ctx, place: usize, nuls: &[u8]) -> Vec<u8> {
    let id = cx.id.clone();
    let text = cx.rng.text(500);
    let hdr = |name: &[u8], value: &[u8]| [name, b": ", value, b"\r\n"].concat();
    let base = |extra: &[u8], body: &[u8]| message(&id, "nul", extra, body);
    match place {
        0 => {
            let mut m = format!("From: a@hostile.example\r\nMessage-ID: <{id}>\r\n").into_bytes();
            push(
                &mut m,
                hdr(b"Subject", &[b"Help ".as_slice(), nuls, b" me"].concat()),
            );
            push(&mut m, "\r\nbody\r\n");
            m
        }
        1 => {
            let mut m = format!("Message-ID: <{id}>\r\nSubject: nul name\r\n").into_bytes();
            push(
                &mut m,
                hdr(
                    b"From",
                    &[b"\"Ann".as_slice(), nuls, b"Root\" <ann@hostile.example>"].concat(),
                ),
            );
            push(&mut m, "\r\nbody\r\n");
            m
        }
        2 => {
            let mut m = format!("Message-ID: <{id}>\r\nSubject: nul address\r\n").into_bytes();
            push(
                &mut m,
                hdr(
                    b"From",
                    &[b"ann".as_slice(), nuls, b"@hostile.example"].concat(),
                ),
            );
            push(&mut m, "\r\nbody\r\n");
            m
        }
        3 => base(
            &hdr(&[b"X-Bad".as_slice(), nuls, b"Name"].concat(), b"v"),
            b"body\r\n",
        ),
        4 => {
            let mut m = format!("From: a@hostile.example\r\nSubject: nul id\r\nMessage-ID: <{id}>")
                .into_bytes();
            push(&mut m, nuls);
            push(&mut m, "\r\n\r\nbody\r\n");
            m
        }
        5 => base(&[nuls, b"\r\n".as_slice()].concat(), b"body\r\n"),
        6 => base(b"", &[nuls, text.as_bytes()].concat()),
        7 => {
            let half = text.len() / 2;
            base(
                b"",
                &[&text.as_bytes()[..half], nuls, &text.as_bytes()[half..]].concat(),
            )
        }
        8 => {
            let name = [b"invoice".as_slice(), nuls, b".pdf.exe"].concat();
            let mut p = b"Content-Type: application/pdf; name=\"".to_vec();
            push(&mut p, &name);
            push(&mut p, "\"\r\nContent-Disposition: attachment; filename=\"");
            push(&mut p, &name);
            push(
                &mut p,
                "\"\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
            );
            multipart(&id, "nul file name", &[text_part(&text), p], true)
        }
        9 => {
            let b = [b"nul".as_slice(), nuls, b"boundary"].concat();
            let mut extra = b"Content-Type: multipart/mixed; boundary=\"".to_vec();
            push(&mut extra, &b);
            push(&mut extra, "\"\r\n");
            let mut body = b"--".to_vec();
            push(&mut body, &b);
            push(&mut body, "\r\nContent-Type: text/plain\r\n\r\nhello\r\n--");
            push(&mut body, &b);
            push(&mut body, "--\r\n");
            base(&extra, &body)
        }
        _ => base(
            b"Content-Type: text/html; charset=utf-8\r\n",
            &[b"<html><body><p>hi".as_slice(), nuls, b"</p></body></html>"].concat(),
        ),
    }
}

/// Bare CR line endings (old Mac mail, some gateways), LF CR, CR CR LF, endings mixed per
/// line, and CR endings in only the header or only the body.
fn bare_cr(set: &mut Set) {
    const ENDINGS: &[&str] = &[
        "CR",
        "LF CR",
        "CR CR LF",
        "mixed per line",
        "CR header, CRLF body",
        "CRLF header, CR body",
    ];
    const SHAPES: &[&str] = &[
        "plain",
        "reply with quote",
        "multipart with attachment",
        "html",
    ];
    for (e, &ending) in ENDINGS.iter().enumerate() {
        for (s, &shape) in SHAPES.iter().enumerate() {
            for i in 0..3 {
                // Read with the natural rule (CRLF, else a lone CR, else a lone LF ends a
                // line), "LF CR" and "CR CR LF" are double-spaced: a blank line after the
                // first field, so the header is that field alone. Either reading is
                // defensible, so those two carry no expectation of subject and sender.
                let expect = (!matches!(e, 1 | 2)).then(|| shaped_expect(s));
                set.add_expecting(
                    "bare-cr",
                    format!("{ending} endings, {shape} (#{i})"),
                    6000,
                    expect,
                    move |cx| {
                        let m = shaped(cx, s);
                        let header_end = m
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .unwrap_or(m.len())
                            + 2;
                        let (h, b) = m.split_at(header_end);
                        match e {
                            0 => with_eol(&m, b"\r"),
                            1 => with_eol(&m, b"\n\r"),
                            2 => with_eol(&m, b"\r\r\n"),
                            3 => {
                                // A lone CR, LF or CRLF per line; never a CR whose next
                                // line is empty and ends in LF: that would read as one
                                // CRLF and swallow the blank line after the header.
                                let mut out = Vec::new();
                                let mut last: &[u8] = b"";
                                for line in m.split(|&c| c == b'\n') {
                                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                                    push(&mut out, line);
                                    const ANY: [&[u8]; 3] = [b"\r", b"\n", b"\r\n"];
                                    const NOT_LF: [&[u8]; 2] = [b"\r", b"\r\n"];
                                    let eol = if line.is_empty() && last == b"\r" {
                                        *cx.rng.pick(&NOT_LF)
                                    } else {
                                        *cx.rng.pick(&ANY)
                                    };
                                    push(&mut out, eol);
                                    last = eol;
                                }
                                out
                            }
                            4 => [with_eol(h, b"\r"), b.to_vec()].concat(),
                            _ => [h.to_vec(), with_eol(b, b"\r")].concat(),
                        }
                    },
                );
            }
        }
    }
}

/// What [`shaped`] writes as subject and sender.
fn shaped_expect(shape: usize) -> Expect {
    Expect {
        subject: [
            "Printer on fire",
            "Re: Printer on fire",
            "With a file",
            "HTML only",
        ][shape],
        from: "sender@hostile.example",
    }
}

/// An ordinary message of one of four shapes, CRLF endings.
fn shaped(cx: &mut Ctx, shape: usize) -> Vec<u8> {
    let text = cx.rng.text(400).replace('\n', "\r\n");
    let subject = shaped_expect(shape).subject;
    match shape {
        0 => message(&cx.id, subject, b"Content-Type: text/plain; charset=utf-8\r\n", text.as_bytes()),
        1 => message(
            &cx.id,
            subject,
            b"In-Reply-To: <original@hostile.example>\r\n",
            format!("{text}\r\n\r\nOn Mon, 2 Nov 2026, Support wrote:\r\n> Have you tried\r\n> turning it off?\r\n").as_bytes(),
        ),
        2 => multipart(
            &cx.id,
            subject,
            &[text_part(&text), attachment_part("a.pdf", "application/pdf", "base64", &cx.rng.bytes(300))],
            true,
        ),
        _ => message(
            &cx.id,
            subject,
            b"Content-Type: text/html; charset=utf-8\r\n",
            format!("<html><body><p>{text}</p></body></html>\r\n").as_bytes(),
        ),
    }
}

/// Raw 8-bit header values: UTF-8, Latin-1, invalid UTF-8 (lone continuation bytes,
/// overlong forms, encoded surrogates, 0xFE/0xFF), and UTF-8 mixed with Latin-1.
fn header_8bit(set: &mut Set) {
    const BYTES: &[(&str, &[u8])] = &[
        ("UTF-8", "Drücker brennt — 打印机着火了 🔥".as_bytes()),
        ("Latin-1", b"Dr\xfccker brennt, \xe0 l'aide \xa9"),
        ("lone continuation bytes", b"abc\x80\x81\xbfdef"),
        ("overlong forms", b"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf"),
        ("encoded surrogates", b"\xed\xa0\x80\xed\xbf\xbf"),
        ("FE FF bytes", b"\xfe\xff\xff\xfe text"),
        ("UTF-8 and Latin-1 mixed", b"\xc3\xbcber \xfcber"),
    ];
    const PLACES: &[&str] = &[
        "subject",
        "from display name",
        "from local part",
        "to display name",
        "attachment file name",
        "body without charset",
        "header field name",
        "every header",
    ];
    for &(what, bytes) in BYTES {
        for (p, &place) in PLACES.iter().enumerate() {
            set.add(
                "header-8bit",
                format!("{what} in {place}"),
                3000,
                move |cx| raw_8bit(cx, p, bytes),
            );
        }
    }
    for i in 0..14 {
        set.add(
            "header-8bit",
            format!("random high bytes everywhere #{i}"),
            4000,
            |cx| {
                let mut m = Vec::new();
                for name in ["From", "To", "Subject", "Reply-To", "X-Mailer"] {
                    push(&mut m, name);
                    push(&mut m, ": ");
                    let n = cx.rng.range(1, 80);
                    let mut v = cx.rng.bytes(n);
                    v.retain(|&b| b >= 0x80 || (b' '..=b'~').contains(&b));
                    push(&mut m, v);
                    push(&mut m, "\r\n");
                }
                push(&mut m, format!("Message-ID: <{}>\r\n\r\n", cx.id));
                push(&mut m, cx.rng.bytes(500));
                m
            },
        );
    }
}

fn raw_8bit(cx: &mut Ctx, place: usize, bytes: &[u8]) -> Vec<u8> {
    let id = cx.id.clone();
    let line = |name: &str, pre: &[u8], post: &[u8]| {
        [name.as_bytes(), b": ", pre, bytes, post, b"\r\n"].concat()
    };
    let mut m = Vec::new();
    match place {
        0 => {
            push(
                &mut m,
                format!("From: a@hostile.example\r\nMessage-ID: <{id}>\r\n"),
            );
            push(&mut m, line("Subject", b"", b""));
        }
        1 => {
            push(&mut m, format!("Subject: name\r\nMessage-ID: <{id}>\r\n"));
            push(&mut m, line("From", b"", b" <named@hostile.example>"));
        }
        2 => {
            push(
                &mut m,
                format!("Subject: local part\r\nMessage-ID: <{id}>\r\n"),
            );
            push(&mut m, line("From", b"<", b"@hostile.example>"));
        }
        3 => {
            push(
                &mut m,
                format!("From: a@hostile.example\r\nSubject: to name\r\nMessage-ID: <{id}>\r\n"),
            );
            push(&mut m, line("To", b"", b" <support@example.com>"));
        }
        4 => {
            let name = [b"r\xe9sum\xe9 ".as_slice(), bytes, b".pdf"].concat();
            let mut p = b"Content-Type: application/pdf; name=\"".to_vec();
            push(&mut p, &name);
            push(&mut p, "\"\r\nContent-Disposition: attachment; filename=\"");
            push(&mut p, &name);
            push(
                &mut p,
                "\"\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
            );
            return multipart(&id, "8-bit file name", &[text_part("see file"), p], true);
        }
        5 => {
            push(
                &mut m,
                format!(
                    "From: a@hostile.example\r\nSubject: 8-bit body\r\nMessage-ID: <{id}>\r\n\r\n"
                ),
            );
            for _ in 0..20 {
                push(&mut m, bytes);
                push(&mut m, "\r\n");
            }
            return m;
        }
        6 => {
            push(
                &mut m,
                format!(
                    "From: a@hostile.example\r\nSubject: 8-bit field name\r\nMessage-ID: <{id}>\r\n"
                ),
            );
            push(&mut m, [b"X-".as_slice(), bytes, b": v\r\n"].concat());
        }
        _ => {
            push(&mut m, format!("Message-ID: <{id}>\r\n"));
            for name in ["From", "To", "Subject", "Cc", "Reply-To", "Organization"] {
                push(&mut m, line(name, b"", b""));
            }
        }
    }
    push(&mut m, "\r\nbody\r\n");
    m
}

/// Something before the first header field: blank lines, a UTF-8 byte-order mark, white
/// space, a NUL, an mbox `From ` line, in front of plain and multipart messages, CRLF or LF.
fn leading_junk(set: &mut Set) {
    const PREFIXES: &[(&str, &[u8])] = &[
        ("CRLF", b"\r\n"),
        ("LF", b"\n"),
        ("two blank lines", b"\r\n\r\n"),
        ("BOM", b"\xef\xbb\xbf"),
        ("BOM + CRLF", b"\xef\xbb\xbf\r\n"),
        ("two BOMs", b"\xef\xbb\xbf\xef\xbb\xbf"),
        ("space line", b"   \r\n"),
        ("tab", b"\t"),
        ("NUL", b"\x00"),
        (
            "mbox From line + BOM",
            b"From sender@hostile.example Thu Nov  5 10:00:00 2026\r\n\xef\xbb\xbf",
        ),
        ("UTF-16 BOM", b"\xff\xfe"),
        ("CR", b"\r"),
        (
            "CRLF before an mbox From line",
            b"\r\nFrom sender@hostile.example Thu Nov  5 10:00:00 2026\r\n",
        ),
    ];
    for &(what, prefix) in PREFIXES {
        for (s, shape) in ["plain", "multipart"].iter().enumerate() {
            for lf in [false, true] {
                set.add_expecting(
                    "leading-junk",
                    format!(
                        "{what} before a {shape} message{}",
                        if lf { ", LF endings" } else { "" }
                    ),
                    3000,
                    Some(shaped_expect(s * 2)),
                    move |cx| {
                        let m = shaped(cx, s * 2);
                        let m = if lf { with_eol(&m, b"\n") } else { m };
                        [prefix, &m].concat()
                    },
                );
            }
        }
    }
}

/// Terminal control: escape sequences (clear screen, OSC 0 window title, OSC 52 clipboard
/// write, C1 CSI), BEL, backspace, DEL, CR/LF injected through encoded words, U+202E
/// right-to-left override, in subjects, names, addresses, file names and bodies, raw and
/// RFC 2047 / RFC 2231 encoded.
fn control_chars(set: &mut Set) {
    const PAYLOADS: &[(&str, &str)] = &[
        ("ESC clear screen", "\x1b[2J\x1b[H"),
        ("OSC 0 window title", "\x1b]0;pwned\x07"),
        (
            "OSC 52 clipboard write",
            "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
        ),
        ("BEL", "\x07\x07\x07"),
        ("U+202E", "invoice\u{202e}fdp.exe"),
        (
            "CR LF injection",
            "fine\r\nAttachment: payroll.xlsx\r\nPay to: IBAN XX00",
        ),
        ("backspace and DEL", "admin\x08\x08\x08\x08\x08\x7fuser"),
        ("C1 CSI", "\u{9b}31mred\u{9b}0m"),
        ("ESC colour", "\x1b[31;1mURGENT\x1b[0m"),
        ("zero width and BOM", "pa\u{200b}y\u{feff}pal"),
    ];
    const PLACES: &[&str] = &[
        "subject, raw",
        "subject, encoded word B",
        "subject, encoded word Q",
        "from display name, encoded",
        "file name, quoted",
        "file name, RFC 2231",
        "file name, encoded word",
        "body",
        "html body",
        "reply-to display name, raw",
        "to display name, encoded",
        "content-type name parameter",
    ];
    for &(what, payload) in PAYLOADS {
        for (p, &place) in PLACES.iter().enumerate() {
            set.add(
                "control-chars",
                format!("{what} in {place}"),
                3000,
                move |cx| control_in(cx, p, payload.as_bytes()),
            );
        }
    }
}

fn control_in(cx: &mut Ctx, place: usize, payload: &[u8]) -> Vec<u8> {
    let id = cx.id.clone();
    let file = |name_params: &[u8]| {
        let mut p = b"Content-Type: application/pdf\r\nContent-Disposition: attachment; ".to_vec();
        push(&mut p, name_params);
        push(
            &mut p,
            "\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
        );
        multipart(&id, "control file name", &[text_part("see file"), p], true)
    };
    match place {
        0 => {
            let mut m = format!("From: a@hostile.example\r\nMessage-ID: <{id}>\r\nSubject: Hello ")
                .into_bytes();
            // A raw CR LF would end the field: raw payloads keep only what fits in a line.
            push(
                &mut m,
                payload
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r' && b != b'\n')
                    .collect::<Vec<u8>>(),
            );
            push(&mut m, "\r\n\r\nbody\r\n");
            m
        }
        1 | 2 => {
            let mut m =
                format!("From: a@hostile.example\r\nMessage-ID: <{id}>\r\nSubject: ").into_bytes();
            push(&mut m, encoded_word("utf-8", place == 1, payload));
            push(&mut m, "\r\n\r\nbody\r\n");
            m
        }
        3 => {
            let mut m =
                format!("Message-ID: <{id}>\r\nSubject: control name\r\nFrom: ").into_bytes();
            push(&mut m, encoded_word("utf-8", true, payload));
            push(&mut m, " <ctl@hostile.example>\r\n\r\nbody\r\n");
            m
        }
        4 => file(
            &[
                b"filename=\"".as_slice(),
                &payload
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r' && b != b'\n' && b != b'"')
                    .collect::<Vec<u8>>(),
                b".pdf\"",
            ]
            .concat(),
        ),
        5 => {
            let mut v = b"filename*=utf-8''".to_vec();
            for b in payload {
                push(&mut v, format!("%{b:02X}"));
            }
            file(&v)
        }
        6 => file(
            &[
                b"filename=\"".as_slice(),
                &encoded_word("utf-8", true, payload),
                b"\"",
            ]
            .concat(),
        ),
        7 => message(
            &id,
            "control body",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            &[b"Hello\r\n".as_slice(), payload, b"\r\nBye\r\n"].concat(),
        ),
        8 => message(
            &id,
            "control html",
            b"Content-Type: text/html; charset=utf-8\r\n",
            &[
                b"<html><body><p>".as_slice(),
                payload,
                b"</p></body></html>\r\n",
            ]
            .concat(),
        ),
        10 => {
            let mut m = format!(
                "From: a@hostile.example\r\nMessage-ID: <{id}>\r\nSubject: control to\r\nTo: "
            )
            .into_bytes();
            push(&mut m, encoded_word("utf-8", true, payload));
            push(&mut m, " <support@example.com>\r\n\r\nbody\r\n");
            m
        }
        11 => {
            let mut p = b"Content-Type: application/pdf; name=\"".to_vec();
            push(&mut p, encoded_word("utf-8", false, payload));
            push(
                &mut p,
                ".pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8=\r\n",
            );
            multipart(
                &id,
                "control name parameter",
                &[text_part("see file"), p],
                true,
            )
        }
        _ => {
            let mut m = format!("From: a@hostile.example\r\nMessage-ID: <{id}>\r\nSubject: control reply-to\r\nReply-To: ").into_bytes();
            push(
                &mut m,
                payload
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\r' && b != b'\n')
                    .collect::<Vec<u8>>(),
            );
            push(&mut m, " <reply@hostile.example>\r\n\r\nbody\r\n");
            m
        }
    }
}

// ---------------------------------------------------------------------------------------
// Addresses and degenerate shapes

/// RFC 5322 address forms the issue names: quoted local parts, comments, groups, obsolete
/// routes, escapes; and broken ones (unterminated quote, empty quoted local part).
fn quoted_local(set: &mut Set) {
    const ADDRESSES: &[&str] = &[
        "\"john doe\"@example.org",
        "John <\"john doe\"@example.org>",
        "\"john\\\"doe\"@example.org",
        "\"a@b\"@example.org",
        "\"x\"@example.org",
        "\"\"@example.org",
        "john.(comment)doe@example.org",
        "(lead comment) ann@example.org (trail comment)",
        "Team: ann@example.org, bob@example.org;",
        "Undisclosed recipients:;",
        "<@relay.example:route@example.org>",
        "\"unterminated@example.org",
        "\"very long quoted local part with spaces and more spaces and still more\"@example.org",
        "ann@[192.0.2.1]",
        "\"ann\"@example.org, \"bob\"@example.org",
        "\"john doe\"@example.org (John Doe)",
        "=?utf-8?q?John_Doe?= <\"john doe\"@example.org>",
        "\"john..doe\"@example.org",
        "john doe@example.org",
        "<>",
    ];
    for (a, &addr) in ADDRESSES.iter().enumerate() {
        for field in ["From", "Reply-To", "Sender"] {
            set.add("quoted-local", format!("{field}: {addr}"), 1000, move |cx| {
                let mut m = format!("Message-ID: <{}>\r\nSubject: quoted local part {a}\r\nTo: support@example.com\r\n", cx.id).into_bytes();
                if field != "From" {
                    push(&mut m, "From: plain@hostile.example\r\n");
                }
                push(&mut m, format!("{field}: {addr}\r\n\r\nHello from {addr}\r\n"));
                m
            });
        }
    }
}

/// Input with nothing in it: zero bytes, white space only, one character, a colon, a field
/// name alone, a byte-order mark alone, 1 MiB of spaces or newlines.
fn empty(set: &mut Set) {
    const INPUTS: &[(&str, &[u8])] = &[
        ("zero bytes", b""),
        ("CRLF", b"\r\n"),
        ("LF", b"\n"),
        ("three LF", b"\n\n\n"),
        ("space", b" "),
        ("tab", b"\t"),
        ("NUL", b"\x00"),
        ("one letter", b"a"),
        ("a colon", b":"),
        ("field name alone", b"From:"),
        ("field name and CRLF", b"Subject:\r\n"),
        ("blank line then text", b"\r\nhello\r\n"),
        ("BOM alone", b"\xef\xbb\xbf"),
        ("BOM and CRLF", b"\xef\xbb\xbf\r\n"),
        ("CR alone", b"\r"),
        (
            "From_ line alone",
            b"From nobody Thu Nov  5 10:00:00 2026\n",
        ),
        ("empty From and Subject", b"From:\r\nSubject:\r\n\r\n"),
        (
            "empty fields, empty body, with date",
            b"From: \r\nTo: \r\nSubject: \r\nDate: \r\n\r\n",
        ),
    ];
    for &(what, bytes) in INPUTS {
        set.add("empty", what, bytes.len(), move |_| bytes.to_vec());
    }
    for (what, byte, size) in [
        ("1 MiB of spaces", b' ', MIB),
        ("1 MiB of LF", b'\n', MIB),
        ("64 KiB of CRLF", b'\r', 64 * 1024),
    ] {
        set.add("empty", what, size, move |_| {
            if byte == b'\r' {
                b"\r\n".repeat(size / 2)
            } else {
                vec![byte; size]
            }
        });
    }
}

/// A message that is only a header block: no blank line, no body, cut in the middle of a
/// field or a folded line, with or without a final line ending, one field only.
fn headers_only(set: &mut Set) {
    const SHAPES: &[&str] = &[
        "full header, final CRLF, no blank line",
        "full header, no final line ending",
        "full header and the blank line, no body",
        "cut in a field name",
        "cut after a colon",
        "cut in a folded line",
        "Subject only",
        "Message-ID only",
        "Received only",
        "Date only",
        "From only, LF",
        "200 fields, no body",
    ];
    for (s, &shape) in SHAPES.iter().enumerate() {
        for i in 0..4 {
            set.add("headers-only", format!("{shape} (#{i})"), 8000, move |cx| {
                let mut h = head(&cx.id, &format!("headers only {}", cx.rng.word(3, 9)));
                match s {
                    0 => h,
                    1 => {
                        h.truncate(h.len() - 2);
                        h
                    }
                    2 => {
                        push(&mut h, "\r\n");
                        h
                    }
                    3 => {
                        push(&mut h, "X-Cut-Fie");
                        h
                    }
                    4 => {
                        push(&mut h, "X-Cut:");
                        h
                    }
                    5 => {
                        push(&mut h, "X-Folded: first line\r\n second line\r\n thi");
                        h
                    }
                    6 => format!("Subject: only a subject {}\r\n", cx.id).into_bytes(),
                    7 => format!("Message-ID: <{}>\r\n", cx.id).into_bytes(),
                    8 => format!(
                        "Received: from x by y for <{}>; Thu, 5 Nov 2026 10:00:00 +0000\r\n",
                        cx.id
                    )
                    .into_bytes(),
                    9 => format!(
                        "Date: Thu, 5 Nov 2026 10:00:{:02} +0000\r\nX-Case: {}\r\n",
                        i, cx.id
                    )
                    .into_bytes(),
                    10 => format!("From: {}\n", cx.id).into_bytes(),
                    _ => {
                        for k in 0..200 {
                            push(&mut h, format!("X-Field-{k}: {}\r\n", cx.rng.word(5, 30)));
                        }
                        h
                    }
                }
            });
        }
    }
}

/// A body that is one line of 100 KiB to 20 MiB: plain text, HTML, a '>' quote, a wall of
/// '>', a repeated "wrote:" header, nested HTML tags, one-line base64 and quoted-printable,
/// no final newline.
fn body_long_line(set: &mut Set) {
    const KINDS: &[&str] = &[
        "plain text",
        "html",
        "one quoted line",
        "wall of >",
        "repeated wrote:",
        "nested divs",
        "nested blockquotes",
        "base64 on one line",
        "quoted-printable on one line",
    ];
    for size in [100 * 1024usize, MIB, 5 * MIB, 20 * MIB] {
        for (k, &kind) in KINDS.iter().enumerate() {
            let giant = size >= 5 * MIB;
            if giant && !matches!(k, 0 | 1 | 3 | 4) || size == 20 * MIB && k > 1 {
                continue;
            }
            set.add(
                "body-long-line",
                format!("{kind}, {}", human(size)),
                size + 600,
                move |cx| long_body(cx, k, size),
            );
        }
    }
}

fn long_body(cx: &mut Ctx, kind: usize, size: usize) -> Vec<u8> {
    let repeat_to = |unit: &[u8]| -> Vec<u8> {
        let mut v = Vec::with_capacity(size + unit.len());
        while v.len() < size {
            v.extend_from_slice(unit);
        }
        v.truncate(size);
        v
    };
    let (ctype, cte, body): (&str, &str, Vec<u8>) = match kind {
        0 => (
            "text/plain",
            "8bit",
            cx.rng.text(size).replace('\n', " ").into_bytes(),
        ),
        1 => (
            "text/html",
            "8bit",
            [
                b"<html><body><p>".as_slice(),
                cx.rng.text(size).replace('\n', " ").as_bytes(),
                b"</p></body></html>",
            ]
            .concat(),
        ),
        2 => (
            "text/plain",
            "8bit",
            [
                b"> ".as_slice(),
                cx.rng.text(size).replace('\n', " ").as_bytes(),
            ]
            .concat(),
        ),
        3 => ("text/plain", "8bit", repeat_to(b">")),
        4 => (
            "text/plain",
            "8bit",
            repeat_to(b"On Mon, 2 Nov 2026 at 10:00, Ann <ann@example.org> wrote: "),
        ),
        5 => ("text/html", "8bit", repeat_to(b"<div>")),
        6 => (
            "text/html",
            "8bit",
            repeat_to(b"<blockquote type=\"cite\">"),
        ),
        7 => (
            "text/plain",
            "base64",
            base64(cx.rng.text(size * 3 / 4).as_bytes(), false),
        ),
        _ => (
            "text/plain",
            "quoted-printable",
            quoted_printable(cx.rng.text(size / 2).as_bytes(), false),
        ),
    };
    message(
        &cx.id,
        "one long line",
        format!("Content-Type: {ctype}; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n")
            .as_bytes(),
        &body,
    )
}
