//! Address header values (`From`, `To`, `Cc`, `Reply-To`, `Sender`) parsed per RFC 5322
//! section 3.4, with the obsolete syntax of section 4.4 and UTF-8 per RFC 6532.
//!
//! Who a message is from decides who may append to a ticket, so an address is either read
//! exactly or not at all: an entry that does not parse is left out, never guessed. In
//! particular `"john doe"@example.org` is the mailbox `"john doe"@example.org`, never
//! `@example.org`, and every address returned has a non-empty local part and domain.
//!
//! What is understood: name-addr and addr-spec; quoted local parts with quoted-pairs;
//! comments anywhere, nested (a comment after a bare address is its name, as in
//! `ann@example.org (Ann Example)`); groups, flattened (`team: a@x, b@y;`,
//! `undisclosed-recipients:;`); source routes (`<@relay:user@domain>`, the route is
//! dropped); white space and comments between the dots of a local part or a domain; domain
//! literals (`user@[192.0.2.1]`); display names with RFC 2047 encoded words (decoded with
//! mail-parser's decoder) or raw UTF-8. One common error is tolerated because the address
//! itself stays unambiguous: a display name with an `@` or a `[...]` in it
//! (`ann@example.org <ann@example.org>`).
//!
//! The form of an address returned: the domain lower-cased; the local part as written,
//! except that its quoting is made canonical (RFC 5322 section 3.4.1 makes the forms
//! equivalent): quotes are dropped when the content is a plain dot-atom
//! (`"john"@example.org` is `john@example.org`), and a local part that needs them is one
//! quoted string (`john."a b"@x` is `"john.a b"@x`). So parsing an address returned gives
//! it back unchanged.
//!
//! Why not a crate: mail-parser 0.11 reads `"john doe"@example.org` as the name `john doe`
//! and the address `@example.org`. mailparse 0.17's `addrparse` rejects a bare quoted
//! local part, returns `@example.org`, `ann@` and `john doe@example.org` as addresses,
//! keeps comments and source routes inside them and fails a whole list on one bad entry;
//! email_address 0.2 reads one addr-spec (no lists, groups or comments); lettre 0.11
//! rejects quoted local parts with spaces, comments, groups and domain literals. None
//! decodes encoded words in a list.
//!
//! The work is bounded: one pass over the value to tokenise it and one over the tokens,
//! at most [`MAX_MAILBOXES`] mailboxes, comments nested at most [`MAX_COMMENT_DEPTH`] deep.

use std::borrow::Cow;

use crate::parse::Mailbox;

/// The most mailboxes read from one header value; the rest is ignored.
pub const MAX_MAILBOXES: usize = 1000;

/// The deepest nesting of comments accepted; a deeper comment makes its entry unparseable.
pub const MAX_COMMENT_DEPTH: usize = 64;

/// All mailboxes of an address list, in order, groups flattened. Entries that cannot be
/// parsed are left out.
///
/// ```
/// use postdesk::address::mailboxes;
/// let list = mailboxes(r#""Doe, John" <John.Doe@Example.ORG>, "john doe"@example.org, team: b@x;"#);
/// let got: Vec<(Option<&str>, &str)> =
///     list.iter().map(|m| (m.name.as_deref(), m.address.as_str())).collect();
/// assert_eq!(got, [
///     (Some("Doe, John"), "John.Doe@example.org"),
///     (None, r#""john doe"@example.org"#),
///     (None, "b@x"),
/// ]);
/// assert!(mailboxes("@example.org, <>, john doe@example.org").is_empty());
/// ```
pub fn mailboxes(value: &str) -> Vec<Mailbox> {
    parse_list(value, MAX_MAILBOXES)
}

/// The first mailbox of an address list that parses, if any.
///
/// ```
/// use postdesk::address::mailbox;
/// let m = mailbox("=?utf-8?q?J=C3=B6rg?= Meier <joerg@example.de>").unwrap();
/// assert_eq!(m.name.as_deref(), Some("Jörg Meier"));
/// assert_eq!(m.address, "joerg@example.de");
/// assert_eq!(mailbox("undisclosed-recipients:;"), None);
/// ```
pub fn mailbox(value: &str) -> Option<Mailbox> {
    parse_list(value, 1).into_iter().next()
}

/// `value` when it is one plain address (`local@domain`: no display name, angle
/// brackets, comment, group or white space), with its domain lower-cased; `None` otherwise.
/// For addresses an operator types (they end up in headers of outgoing mail).
///
/// ```
/// use postdesk::address::plain_address;
/// assert_eq!(plain_address("Support@Example.COM").as_deref(), Some("Support@example.com"));
/// assert_eq!(plain_address("support@example.com\r\nBcc: x@y"), None);
/// assert_eq!(plain_address("Support <support@example.com>"), None);
/// ```
pub fn plain_address(value: &str) -> Option<String> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>()[],;:".contains(c))
    {
        return None;
    }
    match mailboxes(value).as_slice() {
        [m] if m.name.is_none() => Some(m.address.clone()),
        _ => None,
    }
}

fn parse_list(value: &str, max: usize) -> Vec<Mailbox> {
    let (toks, comments) = tokenize(value);
    let mut p = Parser {
        toks,
        comments,
        pos: 0,
        out: Vec::new(),
        max,
    };
    p.list();
    p.out
}

// ---- tokens ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    /// A run of atext (RFC 5322 3.2.3, with UTF-8 per RFC 6532).
    Atom(&'a str),
    /// A quoted string's content: quoted-pairs undone, line breaks of folding removed.
    Quoted(String),
    /// A domain literal's content between the brackets, white space removed.
    Literal(String),
    /// One of the specials `< > : ; @ , .` or a stray `) ] \`.
    Special(char),
    /// Something that cannot be part of any entry: a control character outside quotes, an
    /// unterminated quoted string, comment or domain literal, a comment nested too deep.
    Invalid,
}

#[derive(Debug, Clone)]
struct Token<'a> {
    tok: Tok<'a>,
    /// White space or a comment came right before this token.
    space_before: bool,
}

/// RFC 5322 atext, plus every non-ASCII character that is not a control (RFC 6532).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

fn is_wsp(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The tokens of `s`, and the text of every top-level comment with the index of the token
/// that follows it. An unterminated quoted string, comment or literal ends the tokens with
/// [`Tok::Invalid`]: whatever follows it cannot be read reliably.
fn tokenize(s: &str) -> (Vec<Token<'_>>, Vec<(usize, String)>) {
    let mut toks = Vec::new();
    let mut comments = Vec::new();
    let mut space = false;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let tok = match c {
            c if is_wsp(c) => {
                space = true;
                continue;
            }
            '(' => {
                match comment(&mut it) {
                    Some(text) => comments.push((toks.len(), text)),
                    None => {
                        toks.push(Token {
                            tok: Tok::Invalid,
                            space_before: space,
                        });
                        break;
                    }
                }
                space = true;
                continue;
            }
            '"' => match quoted(&mut it) {
                Some(q) => Tok::Quoted(q),
                None => Tok::Invalid,
            },
            '[' => match literal(&mut it) {
                Some(l) => Tok::Literal(l),
                None => Tok::Invalid,
            },
            '<' | '>' | ':' | ';' | '@' | ',' | '.' | ')' | ']' | '\\' => Tok::Special(c),
            c if is_atext(c) => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = it.peek() {
                    if !is_atext(d) {
                        break;
                    }
                    end = j + d.len_utf8();
                    it.next();
                }
                Tok::Atom(&s[i..end])
            }
            _ => Tok::Invalid, // a control character
        };
        let stop = matches!(
            (&tok, c),
            (Tok::Invalid, '"' | '[') // unterminated: the rest is unreadable
        );
        toks.push(Token {
            tok,
            space_before: space,
        });
        space = false;
        if stop {
            break;
        }
    }
    (toks, comments)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// After `(`: the comment's text up to its matching `)` (nested comments kept with their
/// parentheses, quoted-pairs undone, white space runs made one space). `None` when it is
/// not closed or nested deeper than [`MAX_COMMENT_DEPTH`].
fn comment(it: &mut Chars<'_>) -> Option<String> {
    let mut depth = 1;
    let mut text = String::new();
    while let Some((_, c)) = it.next() {
        match c {
            '\\' => text.push(it.next()?.1),
            '(' => {
                depth += 1;
                if depth > MAX_COMMENT_DEPTH {
                    return None;
                }
                text.push(c);
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text);
                }
                text.push(c);
            }
            c if is_wsp(c) => {
                if !text.ends_with(' ') {
                    text.push(' ');
                }
            }
            c => text.push(c),
        }
    }
    None
}

/// After `"`: the content up to the closing quote, quoted-pairs undone and the line breaks
/// of folding dropped (RFC 5322 3.2.4: they are not part of the content). `None` when the
/// string is not closed.
fn quoted(it: &mut Chars<'_>) -> Option<String> {
    let mut text = String::new();
    while let Some((_, c)) = it.next() {
        match c {
            '"' => return Some(text),
            '\\' => text.push(it.next()?.1),
            '\r' | '\n' => {}
            c => text.push(c),
        }
    }
    None
}

/// After `[`: the domain literal's content up to `]`, white space dropped, quoted-pairs
/// undone (obs-dtext). `None` when it is not closed or holds a bracket, backslash or
/// control.
fn literal(it: &mut Chars<'_>) -> Option<String> {
    let mut text = String::new();
    while let Some((_, c)) = it.next() {
        match c {
            ']' => return Some(text),
            '[' => return None,
            '\\' => text.push(it.next()?.1),
            c if is_wsp(c) => {}
            c => text.push(c),
        }
    }
    None
}

// ---- grammar --------------------------------------------------------------------------

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    comments: Vec<(usize, String)>,
    pos: usize,
    out: Vec<Mailbox>,
    max: usize,
}

impl Parser<'_> {
    fn special_at(&self, i: usize, c: char) -> bool {
        matches!(self.toks.get(i), Some(Token { tok: Tok::Special(s), .. }) if *s == c)
    }

    fn full(&self) -> bool {
        self.out.len() >= self.max
    }

    /// address-list, also the obsolete one with empty entries (`a@x,,b@y`).
    fn list(&mut self) {
        while self.pos < self.toks.len() && !self.full() {
            if self.special_at(self.pos, ',') {
                self.pos += 1;
                continue;
            }
            if !self.address(false) {
                self.skip_entry(false);
            }
        }
    }

    /// Skips to the end of a broken entry: the next `,` (or `;` in a group), or the end.
    fn skip_entry(&mut self, in_group: bool) {
        while self.pos < self.toks.len()
            && !self.special_at(self.pos, ',')
            && !(in_group && self.special_at(self.pos, ';'))
        {
            self.pos += 1;
        }
    }

    /// Whether `i` is where an entry ends.
    fn entry_end(&self, i: usize, in_group: bool) -> bool {
        i >= self.toks.len() || self.special_at(i, ',') || (in_group && self.special_at(i, ';'))
    }

    /// One address (a mailbox, or a group unless `in_group`) at `pos`. On success the
    /// mailboxes are pushed and `pos` is at the end of the entry; on failure nothing is
    /// pushed.
    fn address(&mut self, in_group: bool) -> bool {
        let start = self.pos;
        // The tokens before the first `<`, `:` or end of the entry.
        let mut end = start;
        while !self.entry_end(end, in_group)
            && !self.special_at(end, '<')
            && !self.special_at(end, ':')
        {
            end += 1;
        }
        if self.special_at(end, '<') {
            self.name_addr(start, end, in_group)
        } else if self.special_at(end, ':') {
            !in_group && self.group(start, end)
        } else {
            self.bare_addr_spec(start, end)
        }
    }

    /// `[display-name] <[obs-route] addr-spec>` with the name in `start..lt`.
    fn name_addr(&mut self, start: usize, lt: usize, in_group: bool) -> bool {
        let name = if self.is_phrase(start, lt) || self.is_lenient_name(start, lt) {
            self.name(start, lt)
        } else {
            return false;
        };
        self.pos = lt + 1;
        self.skip_route();
        let spec_start = self.pos;
        let mut gt = spec_start;
        while gt < self.toks.len() && !self.special_at(gt, '>') {
            if self.special_at(gt, '<') || self.special_at(gt, ',') {
                return false;
            }
            gt += 1;
        }
        if gt >= self.toks.len() || !self.entry_end(gt + 1, in_group) {
            return false;
        }
        let Some(address) = self.addr_spec(spec_start, gt) else {
            return false;
        };
        self.out.push(Mailbox { name, address });
        self.pos = gt + 1;
        true
    }

    /// obs-route: `@a,@b:` after `<` (also with empty entries); skipped when present.
    fn skip_route(&mut self) {
        if !(self.special_at(self.pos, '@') || self.special_at(self.pos, ',')) {
            return;
        }
        let mut i = self.pos;
        loop {
            if self.special_at(i, ',') {
                i += 1;
            } else if self.special_at(i, '@') {
                // "@" domain
                i += 1;
                match self.toks.get(i).map(|t| &t.tok) {
                    Some(Tok::Literal(_)) => i += 1,
                    Some(Tok::Atom(_)) => {
                        i += 1;
                        while self.special_at(i, '.')
                            && matches!(self.toks.get(i + 1).map(|t| &t.tok), Some(Tok::Atom(_)))
                        {
                            i += 2;
                        }
                    }
                    _ => return, // not a route: addr_spec will fail on it
                }
            } else if self.special_at(i, ':') {
                self.pos = i + 1;
                return;
            } else {
                return;
            }
        }
    }

    /// `display-name ":" [mailbox-list] ";"` with the name in `start..colon`. A missing
    /// final `;` at the end of the value is tolerated.
    fn group(&mut self, start: usize, colon: usize) -> bool {
        if start == colon || !self.is_phrase(start, colon) {
            return false;
        }
        self.pos = colon + 1;
        loop {
            if self.full() || self.pos >= self.toks.len() {
                return true;
            }
            if self.special_at(self.pos, ';') {
                self.pos += 1;
                break;
            }
            if self.special_at(self.pos, ',') {
                self.pos += 1;
                continue;
            }
            if !self.address(true) {
                self.skip_entry(true);
            }
        }
        // After the group: the end of the entry. Anything else is skipped; the members
        // already read stay.
        if !self.entry_end(self.pos, false) {
            self.skip_entry(false);
        }
        true
    }

    /// An addr-spec standing alone in `start..end`; a comment right after it is its name.
    fn bare_addr_spec(&mut self, start: usize, end: usize) -> bool {
        let Some(address) = self.addr_spec(start, end) else {
            return false;
        };
        // Comments are in token order: a binary search keeps a long list linear.
        let first = self.comments.partition_point(|(at, _)| *at < end);
        let name = self
            .comments
            .get(first)
            .filter(|(at, _)| *at == end)
            .and_then(|(_, text)| display_name(text));
        self.out.push(Mailbox { name, address });
        self.pos = end;
        true
    }

    /// `local-part "@" domain` in exactly the tokens `start..end`, canonical.
    fn addr_spec(&self, start: usize, end: usize) -> Option<String> {
        let at = (start..end).rev().find(|&i| self.special_at(i, '@'))?;
        let local = self.local_part(start, at)?;
        let domain = self.domain(at + 1, end)?;
        Some(format!("{local}@{domain}"))
    }

    /// `word *("." word)` (dot-atom, quoted-string, obs-local-part), with quotes only
    /// where the content needs them.
    fn local_part(&self, start: usize, end: usize) -> Option<String> {
        let content = self.dotted(start, end, true)?;
        if content.is_empty() || content.chars().any(char::is_control) {
            return None;
        }
        if is_dot_atom(&content) {
            return Some(content);
        }
        let mut q = String::with_capacity(content.len() + 2);
        q.push('"');
        for c in content.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        Some(q)
    }

    /// `dot-atom / domain-literal / obs-domain`, lower-cased.
    fn domain(&self, start: usize, end: usize) -> Option<String> {
        if start >= end {
            return None;
        }
        if end - start == 1
            && let Tok::Literal(l) = &self.toks[start].tok
        {
            let dtext = |c: char| {
                (c.is_ascii_graphic() && !matches!(c, '[' | ']' | '\\'))
                    || (!c.is_ascii() && !c.is_control())
            };
            let ok = !l.is_empty() && l.chars().all(dtext);
            return ok.then(|| format!("[{}]", l.to_lowercase()));
        }
        Some(self.dotted(start, end, false)?.to_lowercase())
    }

    /// The words of `start..end` (atoms, and quoted strings if `quoted`) separated by
    /// single dots, joined: dot-atom, obs-local-part, obs-domain. White space and comments
    /// around the dots are already gone.
    fn dotted(&self, start: usize, end: usize, quoted: bool) -> Option<String> {
        let mut out = String::new();
        let mut want_word = true;
        for t in self.toks.get(start..end)? {
            match (&t.tok, want_word) {
                (Tok::Atom(a), true) => out.push_str(a),
                (Tok::Quoted(q), true) if quoted => out.push_str(q),
                (Tok::Special('.'), false) => out.push('.'),
                _ => return None,
            }
            want_word = !want_word;
        }
        // Ends with a word (and is not empty).
        (!want_word).then_some(out)
    }

    /// phrase / obs-phrase: words (atoms, quoted strings) and dots, starting with a word.
    fn is_phrase(&self, start: usize, end: usize) -> bool {
        (start..end).all(|i| match &self.toks[i].tok {
            Tok::Atom(_) | Tok::Quoted(_) => true,
            Tok::Special('.') => i > start,
            _ => false,
        })
    }

    /// A display name that is not a phrase but cannot be mistaken for anything else before
    /// an angle address: words, dots, `@` and bracketed text.
    fn is_lenient_name(&self, start: usize, end: usize) -> bool {
        (start..end).all(|i| {
            matches!(
                &self.toks[i].tok,
                Tok::Atom(_) | Tok::Quoted(_) | Tok::Literal(_) | Tok::Special('.' | '@')
            )
        })
    }

    /// The display name in `start..end`: words joined by one space where the value had
    /// white space, quotes removed, encoded words decoded; `None` when empty.
    fn name(&self, start: usize, end: usize) -> Option<String> {
        let mut text = String::new();
        for t in &self.toks[start..end] {
            if t.space_before && !text.is_empty() {
                text.push(' ');
            }
            match &t.tok {
                Tok::Atom(a) => text.push_str(a),
                Tok::Quoted(q) => text.push_str(q),
                Tok::Literal(l) => {
                    text.push('[');
                    text.push_str(l);
                    text.push(']');
                }
                Tok::Special(c) => text.push(*c),
                Tok::Invalid => {}
            }
        }
        display_name(&text)
    }
}

/// A display name as shown: encoded words decoded, then trimmed (a word may decode to
/// white space); `None` when nothing is left.
fn display_name(text: &str) -> Option<String> {
    let name = decode_words(text.trim());
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// A dot-atom: runs of atext separated by single dots, none at either end.
fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|part| !part.is_empty() && part.chars().all(is_atext))
}

// ---- RFC 2047 -------------------------------------------------------------------------

/// `s` with its RFC 2047 encoded words decoded; white space between two encoded words is
/// dropped (RFC 2047 section 6.2). Words that do not decode stay as written.
fn decode_words(s: &str) -> Cow<'_, str> {
    if !s.contains("=?") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut after_word = false;
    while let Some(i) = rest.find("=?") {
        let before = &rest[..i];
        match encoded_word(&rest[i..]) {
            Some((text, len)) => {
                if !(after_word && before.chars().all(|c| c == ' ' || c == '\t')) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[i + len..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..i + 2]);
                rest = &rest[i + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The encoded word `=?charset?enc?text?=` at the start of `s`: its decoded text and its
/// length. Decoding (charsets, B and Q) is mail-parser's.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let plain = |c: u8| c != b'?' && !c.is_ascii_whitespace();
    // "=?" charset "?"
    let mut i = 2;
    while i < b.len() && plain(b[i]) {
        i += 1;
    }
    if i == 2 || b.get(i) != Some(&b'?') {
        return None;
    }
    // encoding "?"
    if !matches!(b.get(i + 1), Some(b'q' | b'Q' | b'b' | b'B')) || b.get(i + 2) != Some(&b'?') {
        return None;
    }
    i += 3;
    while i < b.len() && plain(b[i]) {
        i += 1;
    }
    if b.get(i) != Some(&b'?') || b.get(i + 1) != Some(&b'=') {
        return None;
    }
    let len = i + 2;
    let text = mail_parser::parsers::MessageStream::new(&b[1..len]).decode_rfc2047()?;
    Some((text, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn got(value: &str) -> Vec<(Option<String>, String)> {
        mailboxes(value)
            .into_iter()
            .map(|m| (m.name, m.address))
            .collect()
    }

    /// input → expected (name, address) pairs; `None` names written as "".
    const CASES: &[(&str, &[(&str, &str)])] = &[
        // plain forms
        ("ann@example.org", &[("", "ann@example.org")]),
        ("  ann@example.org  ", &[("", "ann@example.org")]),
        ("Ann <ann@example.org>", &[("Ann", "ann@example.org")]),
        ("<ann@example.org>", &[("", "ann@example.org")]),
        (
            "Ann Example <Ann.Example@EXAMPLE.Org>",
            &[("Ann Example", "Ann.Example@example.org")],
        ),
        (
            "\"Example, Ann\" <ann@example.org>",
            &[("Example, Ann", "ann@example.org")],
        ),
        (
            "John Q. Public <jqp@example.com>",
            &[("John Q. Public", "jqp@example.com")],
        ),
        ("a@x, b@y,c@z", &[("", "a@x"), ("", "b@y"), ("", "c@z")]),
        // quoted local parts
        (
            "\"john doe\"@example.org",
            &[("", "\"john doe\"@example.org")],
        ),
        (
            "From <\"john doe\"@Example.org>",
            &[("From", "\"john doe\"@example.org")],
        ),
        ("\"john\"@example.org", &[("", "john@example.org")]),
        ("\"john.doe\"@example.org", &[("", "john.doe@example.org")]),
        (
            "\"john\".\"doe\"@example.org",
            &[("", "john.doe@example.org")],
        ),
        ("john.\"a b\"@x", &[("", "\"john.a b\"@x")]),
        ("\"a@b\"@example.org", &[("", "\"a@b\"@example.org")]),
        (r#""a\"b"@x"#, &[("", r#""a\"b"@x"#)]),
        (r#""a\\b"@x"#, &[("", r#""a\\b"@x"#)]),
        (r#""a\bc"@x"#, &[("", "abc@x")]),
        ("\"a..b\"@x", &[("", "\"a..b\"@x")]),
        ("\".a\"@x", &[("", "\".a\"@x")]),
        ("\" \"@x", &[("", "\" \"@x")]),
        ("\"john\r\n doe\"@x", &[("", "\"john doe\"@x")]),
        // comments
        (
            "ann@example.org (Ann Example)",
            &[("Ann Example", "ann@example.org")],
        ),
        (
            "ann@example.org (Ann (the) Example)",
            &[("Ann (the) Example", "ann@example.org")],
        ),
        (
            "(c) ann (c) @ (c) example (c) . (c) org (c)",
            &[("c", "ann@example.org")],
        ),
        (
            "Ann (x) <ann(y)@(z)example.org(w)>",
            &[("Ann", "ann@example.org")],
        ),
        ("a@x (one, two), b@y", &[("one, two", "a@x"), ("", "b@y")]),
        (r"a@x (a \) b)", &[("a ) b", "a@x")]),
        (
            "ann@example.org (=?utf-8?q?Ann_=C3=89?=)",
            &[("Ann É", "ann@example.org")],
        ),
        // groups
        ("undisclosed-recipients:;", &[]),
        ("undisclosed-recipients: ;", &[]),
        ("team: a@x, Bob <b@y>;", &[("", "a@x"), ("Bob", "b@y")]),
        (
            "team: a@x, b@y; , c@z",
            &[("", "a@x"), ("", "b@y"), ("", "c@z")],
        ),
        ("one: a@x;, two: b@y;", &[("", "a@x"), ("", "b@y")]),
        ("team: a@x, b@y", &[("", "a@x"), ("", "b@y")]),
        ("\"the team\": a@x;", &[("", "a@x")]),
        ("team: broken, b@y;", &[("", "b@y")]),
        ("outer: inner: a@x;;", &[]),
        // obsolete forms
        (
            "<@relay.example:user@example.org>",
            &[("", "user@example.org")],
        ),
        (
            "Ann <@a.example,@b.example:ann@example.org>",
            &[("Ann", "ann@example.org")],
        ),
        (
            "<,@a.example,,@[192.0.2.9]:ann@example.org>",
            &[("", "ann@example.org")],
        ),
        (
            "john . doe @ example . org",
            &[("", "john.doe@example.org")],
        ),
        ("john.\"doe\"@example.org", &[("", "john.doe@example.org")]),
        ("a@x,,, b@y,", &[("", "a@x"), ("", "b@y")]),
        (", a@x", &[("", "a@x")]),
        ("Ann.Example <ann@x>", &[("Ann.Example", "ann@x")]),
        // domain literals
        ("user@[192.0.2.1]", &[("", "user@[192.0.2.1]")]),
        ("user@[ 192.0.2.1 ]", &[("", "user@[192.0.2.1]")]),
        (
            "Ann <user@[IPv6:2001:DB8::1]>",
            &[("Ann", "user@[ipv6:2001:db8::1]")],
        ),
        // encoded words and UTF-8
        ("=?utf-8?q?J=C3=B6rg?= <j@x>", &[("Jörg", "j@x")]),
        ("=?UTF-8?B?SsO2cmc=?= Meier <j@x>", &[("Jörg Meier", "j@x")]),
        (
            "=?iso-8859-1?q?J=F6rg?= =?iso-8859-1?q?_M?= <j@x>",
            &[("Jörg M", "j@x")],
        ),
        ("\"=?utf-8?q?J=C3=B6rg?=\" <j@x>", &[("Jörg", "j@x")]),
        ("=?utf-8?q?broken <j@x>", &[("=?utf-8?q?broken", "j@x")]),
        ("=?koi8-r?b?8NLJ18XU?= <p@x>", &[("Привет", "p@x")]),
        (
            "Jörg Müller <jörg@bücher.example>",
            &[("Jörg Müller", "jörg@bücher.example")],
        ),
        ("用户@例子.广告", &[("", "用户@例子.广告")]),
        ("ÄNN@ÄXAMPLE.ORG", &[("", "ÄNN@äxample.org")]),
        // tolerated: an address as display name
        (
            "ann@example.org <ann@example.org>",
            &[("ann@example.org", "ann@example.org")],
        ),
        ("Ann [Support] <ann@x>", &[("Ann [Support]", "ann@x")]),
        // hostile and broken: left out, never guessed
        ("@example.org", &[]),
        ("<@example.org>", &[]),
        ("ann@", &[]),
        ("<ann@>", &[]),
        ("ann", &[]),
        ("<ann>", &[]),
        ("<>", &[]),
        ("\"\"@example.org", &[]),
        ("john doe@example.org", &[]),
        ("john..doe@example.org", &[]),
        (".john@example.org", &[]),
        ("john.@example.org", &[]),
        ("ann@example..org", &[]),
        ("ann@.example.org", &[]),
        ("ann@example.org.", &[]),
        ("ann@\"example\".org", &[]),
        ("a@b@c", &[]),
        ("Ann <ann@x", &[]),
        ("Ann <ann@x> junk", &[]),
        ("Ann <ann@x> <bob@y>", &[]),
        ("<ann@x>>", &[]),
        ("Ann ann@x", &[]),
        ("a@x; b@y", &[]),
        ("\"unterminated <a@x>, b@y", &[]),
        ("a@x, (unterminated b@y", &[("", "a@x")]),
        ("a@x, b@[192.0.2.1", &[("", "a@x")]),
        ("a\u{0}b@x, c@y", &[("", "c@y")]),
        ("\"a\u{1b}b\"@x, c@y", &[("", "c@y")]),
        ("\"a\u{9b}b\"@x", &[]),
        ("a@x\u{7f}, c@y", &[("", "c@y")]),
        ("a@[1\\]2], c@y", &[("", "c@y")]),
        ("a@[], c@y", &[("", "c@y")]),
        ("a@[a[b], c@y", &[]),
        ("Ann, <a@x>", &[("", "a@x")]),
        ("Doe, John <john@x>", &[("John", "john@x")]),
        (
            "\u{202e}gro.elpmaxe <evil@x>",
            &[("\u{202e}gro.elpmaxe", "evil@x")],
        ),
        (":a@x;", &[]),
        ("<a@x>:;", &[]),
        (
            "Ann <a@x>\r\n, Bob\r\n <b@y>",
            &[("Ann", "a@x"), ("Bob", "b@y")],
        ),
    ];

    #[test]
    fn table() {
        for (input, want) in CASES {
            let want: Vec<(Option<String>, String)> = want
                .iter()
                .map(|(n, a)| ((!n.is_empty()).then(|| n.to_string()), a.to_string()))
                .collect();
            assert_eq!(got(input), want, "mailboxes({input:?})");
            assert_eq!(
                mailbox(input).map(|m| (m.name, m.address)),
                want.first().cloned(),
                "mailbox({input:?})"
            );
        }
    }

    /// Found by fuzzing (`address` target): a comment name whose first encoded word
    /// decodes to nothing or to white space came out with a leading space.
    #[test]
    fn comment_name_is_trimmed_after_decoding() {
        assert_eq!(
            got("a@x (=?utf-8?q?_?= Ann)"),
            [(Some("Ann".to_string()), "a@x".to_string())]
        );
        assert_eq!(
            got("a@x (=?utf-8?b?=?=  <b@y>)"),
            [(Some("<b@y>".to_string()), "a@x".to_string())]
        );
        assert_eq!(got("a@x (=?utf-8?q?_?=)"), [(None, "a@x".to_string())]);
        assert_eq!(
            got("=?utf-8?q?_?= Ann <a@x>"),
            [(Some("Ann".to_string()), "a@x".to_string())]
        );
    }

    #[test]
    fn mailbox_cap() {
        let list = vec!["a@x"; MAX_MAILBOXES + 10].join(",");
        assert_eq!(mailboxes(&list).len(), MAX_MAILBOXES);
        let group = format!("g: {};", vec!["a@x"; MAX_MAILBOXES + 10].join(","));
        assert_eq!(mailboxes(&group).len(), MAX_MAILBOXES);
    }

    #[test]
    fn comment_depth_cap() {
        let ok = format!(
            "a@x {}{}",
            "(".repeat(MAX_COMMENT_DEPTH),
            ")".repeat(MAX_COMMENT_DEPTH)
        );
        assert_eq!(got(&ok).len(), 1);
        let deep = format!(
            "a@x {}{}, b@y",
            "(".repeat(MAX_COMMENT_DEPTH + 1),
            ")".repeat(MAX_COMMENT_DEPTH + 1)
        );
        assert_eq!(got(&deep), []);
        // Far too deep, and unbalanced: still one pass.
        let huge = format!("a@x, b@y {}", "(".repeat(1_000_000));
        assert_eq!(got(&huge), [(None, "a@x".to_string())]);
    }

    #[test]
    fn large_inputs_stay_linear() {
        // Each of these would be quadratic with a naive retry or rescan.
        for v in [
            "=?".repeat(200_000),
            "=?a?q?".repeat(100_000),
            "a.".repeat(200_000) + "@x",
            "<".repeat(200_000),
            "a ".repeat(200_000) + "<a@x>",
            ":".repeat(200_000),
            "@".repeat(200_000),
            "a@x ".repeat(100_000),
            // a name from a comment is looked up among all the comments of the value
            "a@x (c), ".repeat(100_000),
        ] {
            let t = std::time::Instant::now();
            let _ = mailboxes(&v);
            assert!(
                t.elapsed() < std::time::Duration::from_secs(2),
                "{:?}...",
                &v[..20]
            );
        }
    }

    /// Header values rich in the characters that matter to the grammar.
    fn value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => prop::sample::select(vec![
                "a", "b", "x", "john", "example", "org", " ", "  ", "\t", "\r\n ", "@", ".", ",",
                ";", ":", "<", ">", "(", ")", "[", "]", "\"", "\\", "=?utf-8?q?a?=", "=?", "?=",
                "ä", "\u{202e}", "\u{0}", "\u{1b}", "192.0.2.1", "undisclosed-recipients:;",
            ]).prop_map(str::to_string),
            1 => any::<char>().prop_map(|c| c.to_string()),
        ];
        prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
    }

    fn check(value: &str) -> Result<(), TestCaseError> {
        let list = mailboxes(value);
        prop_assert!(list.len() <= MAX_MAILBOXES);
        for m in &list {
            let at = m.address.rfind('@');
            prop_assert!(at.is_some(), "{:?} -> {:?}", value, m);
            let at = at.unwrap();
            prop_assert!(at > 0 && at + 1 < m.address.len(), "{:?} -> {:?}", value, m);
            prop_assert!(
                !m.address.chars().any(char::is_control),
                "{:?} -> {:?}",
                value,
                m
            );
            prop_assert_ne!(&m.address[..at], "\"\"");
            if let Some(name) = &m.name {
                prop_assert!(
                    !name.is_empty() && name.trim() == name,
                    "{:?} -> {:?}",
                    value,
                    m
                );
            }
            // An address returned parses to itself.
            let again = mailboxes(&m.address);
            prop_assert_eq!(again.len(), 1, "{:?} -> {:?}", value, m);
            prop_assert_eq!(&again[0].address, &m.address);
        }
        prop_assert_eq!(mailbox(value), list.into_iter().next());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn addresses_are_never_partial(v in value()) {
            check(&v)?;
        }

        #[test]
        fn any_string_never_panics(v in any::<String>()) {
            check(&v)?;
        }
    }
}
