//! Text from mail made safe for an operator's terminal.
//!
//! Subjects, names, attachment file names, bodies and reasons are written by whoever sent
//! the mail. Printed raw, they could move the cursor and overwrite lines (CSI), set the
//! window title (OSC 0), write the clipboard (OSC 52), ring the bell, forge extra lines
//! with CR/LF, or display text reversed (bidi controls). Everything that reaches a terminal
//! goes through [`line()`] (one-line fields) or [`block()`] (multi-line bodies) first; JSON
//! output is exact and escaped the JSON way instead.
//!
//! # What is escaped
//!
//! - every C0 control (U+0000–U+001F, ESC, BEL, NUL, CR, LF, TAB, ...) and DEL (U+007F),
//!   except that [`block()`] keeps LF and TAB;
//! - every C1 control (U+0080–U+009F: some terminals read U+009B as CSI and U+009D as OSC);
//! - the Unicode bidi controls U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C,
//!   which make text display in another order than it is stored;
//! - the line and paragraph separators U+2028 and U+2029, which some pagers and viewers
//!   break lines at.
//!
//! # The escape form
//!
//! Rust's string-literal escapes: `\n`, `\r`, `\t`; `\xHH` for the other ASCII controls
//! (`\x1b`, `\x00`, `\x7f`); `\u{H..}` for the non-ASCII ones (`\u{9b}`, `\u{202e}`).
//! They are plain printable ASCII, so they survive any terminal and any font, they say
//! exactly which character was there (a replacement character or a dropped byte would
//! not), and they can be pasted into a Rust or JSON-like string to reproduce the input.
//! `\x` is used only for ASCII so that it always means one character, never a byte of an
//! encoding.
//!
//! The form is unambiguous: a backslash from the input is doubled (`\\`) whenever it is
//! followed by `\`, `n`, `r`, `t`, `x`, `u`, or by a character that is escaped, that is
//! whenever it could be read as the start of an escape. Any other backslash stays single,
//! so a Windows path such as `C:\Users\ann` prints as written.
//!
//! Both functions borrow their input when nothing needs escaping, which is almost always.

use std::borrow::Cow;

/// `s` for a one-line field (subject, name, file name, address, reason): every control
/// character, including CR, LF and TAB, and every bidi control is replaced by a visible
/// escape, so one field can never forge another line nor reorder the text around it.
///
/// ```
/// use postdesk::term::line;
/// assert_eq!(line("Printer on fire"), "Printer on fire");
/// assert_eq!(line("Hi\r\nAttachment: invoice.pdf"), r"Hi\r\nAttachment: invoice.pdf");
/// assert_eq!(line("\x1b]0;pwned\x07"), r"\x1b]0;pwned\x07");
/// assert_eq!(line("invoice\u{202e}fdp.exe"), r"invoice\u{202e}fdp.exe");
/// assert_eq!(line(r"C:\Users\ann"), r"C:\Users\ann");
/// assert_eq!(line(r"a\nb"), r"a\\nb");
/// ```
pub fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` for a multi-line body: line feeds and tabs are kept, a CR LF pair becomes a line
/// feed, and every other control (a lone CR included) and every bidi control is replaced
/// by a visible escape, as in [`line()`].
///
/// ```
/// use postdesk::term::block;
/// assert_eq!(block("Hello,\n\tit is on fire.\n"), "Hello,\n\tit is on fire.\n");
/// assert_eq!(block("one\r\ntwo\rthree"), "one\ntwo\\rthree");
/// assert_eq!(block("\x1b[2J\x1b]52;c;cm0gLXJm\x07"), r"\x1b[2J\x1b]52;c;cm0gLXJm\x07");
/// ```
pub fn block(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Whether `c` is replaced by an escape: controls (Cc: C0, DEL, C1), bidi controls and the
/// Unicode line and paragraph separators.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// Whether `c` is written with an escape, given whether line feeds and tabs are kept.
fn escaped(c: char, keep_layout: bool) -> bool {
    hostile(c) && !(keep_layout && matches!(c, '\n' | '\t'))
}

/// Whether a backslash followed by `rest` must be doubled to keep the output unambiguous:
/// when what follows it in the output starts with a letter of an escape or a backslash.
fn doubles_backslash(rest: &str, keep_layout: bool) -> bool {
    let mut next = rest.chars();
    match next.next() {
        Some('\\' | 'n' | 'r' | 't' | 'x' | 'u') => true,
        // In a body, CR LF prints as a plain line feed.
        Some('\r') if keep_layout => next.next() != Some('\n'),
        Some(c) => escaped(c, keep_layout),
        None => false,
    }
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    // Find the first character that changes; most text has none and is borrowed.
    let changes = |i: usize, c: char| match c {
        '\\' => doubles_backslash(&s[i + 1..], keep_layout),
        '\r' if keep_layout => true,
        c => escaped(c, keep_layout),
    };
    let Some(first) = s
        .char_indices()
        .find(|&(i, c)| changes(i, c))
        .map(|(i, _)| i)
    else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for (i, c) in s.char_indices().skip_while(|&(i, _)| i < first) {
        let rest = &s[i + c.len_utf8()..];
        match c {
            '\\' => {
                out.push('\\');
                if doubles_backslash(rest, keep_layout) {
                    out.push('\\');
                }
            }
            // CR LF is a line ending in a body: keep the line feed only.
            '\r' if keep_layout && rest.starts_with('\n') => {}
            c if escaped(c, keep_layout) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn push_escape(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` cut to at most `max` characters, with `…` after the cut; borrowed when it fits.
/// For text from mail in a table column or a reason line (escape it first: an escape is
/// never cut in two that way).
///
/// ```
/// use postdesk::term::clip;
/// assert_eq!(clip("Printer on fire", 7), "Printer…");
/// assert_eq!(clip("Printer", 7), "Printer");
/// ```
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reverse of the escaping, for tests: proves that the form is unambiguous.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars().peekable();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.peek().copied() {
                Some('\\') => {
                    it.next();
                    out.push('\\');
                }
                Some('n') => {
                    it.next();
                    out.push('\n');
                }
                Some('r') => {
                    it.next();
                    out.push('\r');
                }
                Some('t') => {
                    it.next();
                    out.push('\t');
                }
                Some('x') => {
                    it.next();
                    let hex: String = it.by_ref().take(2).collect();
                    out.push(char::from(u8::from_str_radix(&hex, 16).unwrap()));
                }
                Some('u') => {
                    it.next();
                    assert_eq!(it.next(), Some('{'));
                    let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                _ => out.push('\\'),
            }
        }
        out
    }

    /// Every character the module promises to neutralise.
    fn hostile_set() -> Vec<char> {
        let mut set: Vec<char> = (0u32..0x20)
            .chain(0x7f..0xa0)
            .filter_map(char::from_u32)
            .collect();
        set.extend([
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}',
        ]);
        set
    }

    /// A character the output must not contain.
    fn forbidden(c: char, keep_layout: bool) -> bool {
        hostile_set().contains(&c) && !(keep_layout && (c == '\n' || c == '\t'))
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, &str)] = &[
            // input, line, block
            ("", "", ""),
            ("plain text", "plain text", "plain text"),
            (
                "Grüße, Ørsted — 日本語",
                "Grüße, Ørsted — 日本語",
                "Grüße, Ørsted — 日本語",
            ),
            ("a\nb", r"a\nb", "a\nb"),
            ("a\r\nb", r"a\r\nb", "a\nb"),
            ("a\rb", r"a\rb", r"a\rb"),
            ("a\r", r"a\r", r"a\r"),
            ("a\r\r\nb", r"a\r\r\nb", "a\\r\nb"),
            ("a\tb", r"a\tb", "a\tb"),
            ("\0", r"\x00", r"\x00"),
            ("\x07", r"\x07", r"\x07"),
            ("\x08\x0b\x0c", r"\x08\x0b\x0c", r"\x08\x0b\x0c"),
            ("\x7f", r"\x7f", r"\x7f"),
            // CSI: clear screen, cursor home, colours
            (
                "\x1b[2J\x1b[H\x1b[31mred",
                r"\x1b[2J\x1b[H\x1b[31mred",
                r"\x1b[2J\x1b[H\x1b[31mred",
            ),
            // OSC 0 window title, BEL- and ST-terminated
            ("\x1b]0;owned\x07", r"\x1b]0;owned\x07", r"\x1b]0;owned\x07"),
            // (a backslash at the end cannot start an escape: it stays single)
            (
                "\x1b]0;owned\x1b\\",
                r"\x1b]0;owned\x1b\",
                r"\x1b]0;owned\x1b\",
            ),
            // OSC 52 clipboard write
            (
                "\x1b]52;c;Y3VybCB4fHNo\x07",
                r"\x1b]52;c;Y3VybCB4fHNo\x07",
                r"\x1b]52;c;Y3VybCB4fHNo\x07",
            ),
            // C1 CSI and OSC, and NEL
            ("\u{9b}2J", r"\u{9b}2J", r"\u{9b}2J"),
            ("\u{9d}0;t\u{9c}", r"\u{9d}0;t\u{9c}", r"\u{9d}0;t\u{9c}"),
            ("a\u{85}b", r"a\u{85}b", r"a\u{85}b"),
            ("\u{80}", r"\u{80}", r"\u{80}"),
            // bidi: an .exe shown as .pdf
            (
                "invoice\u{202e}fdp.exe",
                r"invoice\u{202e}fdp.exe",
                r"invoice\u{202e}fdp.exe",
            ),
            (
                "\u{2066}x\u{2069}",
                r"\u{2066}x\u{2069}",
                r"\u{2066}x\u{2069}",
            ),
            (
                "\u{200e}\u{200f}\u{61c}",
                r"\u{200e}\u{200f}\u{61c}",
                r"\u{200e}\u{200f}\u{61c}",
            ),
            (
                "a\u{2028}b\u{2029}",
                r"a\u{2028}b\u{2029}",
                r"a\u{2028}b\u{2029}",
            ),
            // not controls: kept
            (
                "\u{a0}\u{200b}\u{feff}ä",
                "\u{a0}\u{200b}\u{feff}ä",
                "\u{a0}\u{200b}\u{feff}ä",
            ),
            // backslashes: doubled only where they could start an escape
            (r"C:\Users\ann", r"C:\Users\ann", r"C:\Users\ann"),
            (r"C:\new\temp", r"C:\\new\\temp", r"C:\\new\\temp"),
            (r"\x1b", r"\\x1b", r"\\x1b"),
            (r"\u{202e}", r"\\u{202e}", r"\\u{202e}"),
            (r"a\\b", r"a\\\b", r"a\\\b"),
            ("\\", "\\", "\\"),
            ("\\\x1b", r"\\\x1b", r"\\\x1b"),
            ("\\\n", r"\\\n", "\\\n"),
            ("\\\t", r"\\\t", "\\\t"),
            ("\\\r\n", r"\\\r\n", "\\\n"),
        ];
        for (input, want_line, want_block) in cases {
            assert_eq!(line(input), *want_line, "line({input:?})");
            assert_eq!(block(input), *want_block, "block({input:?})");
        }
    }

    #[test]
    fn whole_hostile_set_is_escaped() {
        for c in hostile_set() {
            let s = format!("a{c}b");
            let l = line(&s);
            assert!(
                !l.chars().any(|c| forbidden(c, false)),
                "line({s:?}) = {l:?}"
            );
            assert_eq!(unescape(&l), s);
            let b = block(&s);
            assert!(
                !b.chars().any(|c| forbidden(c, true)),
                "block({s:?}) = {b:?}"
            );
            if c == '\n' || c == '\t' {
                assert_eq!(b, s);
            }
        }
    }

    #[test]
    fn borrows_when_nothing_changes() {
        assert!(matches!(
            line("Re: [PD-7] Printer, ünïcödé"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(line(r"C:\Users\ann"), Cow::Borrowed(_)));
        assert!(matches!(block("a\n\tb\n"), Cow::Borrowed(_)));
        assert!(matches!(line("a\nb"), Cow::Owned(_)));
        assert!(matches!(block("a\r\nb"), Cow::Owned(_)));
    }

    /// Strings rich in the characters that matter: controls, bidi, backslashes and the
    /// letters of escapes, among any other characters.
    fn tricky() -> impl Strategy<Value = String> {
        let pick = prop_oneof![
            3 => prop::sample::select(hostile_set()),
            2 => prop::sample::select(vec!['\\', 'n', 'r', 't', 'x', 'u', '{', '}', '0', '1', 'b']),
            1 => any::<char>(),
        ];
        prop::collection::vec(pick, 0..40).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn line_output_has_no_control_or_bidi(s in tricky()) {
            let out = line(&s);
            prop_assert!(!out.chars().any(|c| forbidden(c, false)), "{:?} -> {:?}", s, out);
            prop_assert_eq!(unescape(&out), s);
        }

        #[test]
        fn block_output_has_only_newline_and_tab(s in tricky()) {
            let out = block(&s);
            prop_assert!(!out.chars().any(|c| forbidden(c, true)), "{:?} -> {:?}", s, out);
            prop_assert_eq!(unescape(&out), s.replace("\r\n", "\n"));
        }

        #[test]
        fn any_string(s in any::<String>()) {
            prop_assert!(!line(&s).chars().any(|c| forbidden(c, false)));
            prop_assert!(!block(&s).chars().any(|c| forbidden(c, true)));
        }
    }
}
