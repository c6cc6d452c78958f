//! `term::line` and `term::block` on arbitrary text: the output never holds a control,
//! C1 or bidi character (but LF and TAB from `block`), it can be read back to the input
//! (the escapes are unambiguous), and it is borrowed exactly when nothing changed.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use postdesk::term::{block, line};

/// The characters no output may hold.
fn forbidden(c: char, keep_layout: bool) -> bool {
    let hostile = c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        );
    hostile && !(keep_layout && matches!(c, '\n' | '\t'))
}

/// The input back from the escaped form; `None` when an escape is malformed.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match it.peek().copied() {
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('x') => {
                it.next();
                let hex: String = it.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                continue;
            }
            Some('u') => {
                it.next();
                if it.next() != Some('{') {
                    return None;
                }
                let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                continue;
            }
            _ => {
                out.push('\\');
                continue;
            }
        };
        it.next();
        out.push(decoded);
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let s: &str = &input;

    let l = line(s);
    if let Some(c) = l.chars().find(|&c| forbidden(c, false)) {
        panic!("line() let {c:?} through");
    }
    assert_eq!(unescape(&l).as_deref(), Some(s), "line() is ambiguous");
    assert_eq!(
        matches!(l, Cow::Borrowed(_)),
        l == s,
        "line() borrowed wrongly"
    );

    let b = block(s);
    if let Some(c) = b.chars().find(|&c| forbidden(c, true)) {
        panic!("block() let {c:?} through");
    }
    let want = s.replace("\r\n", "\n");
    assert_eq!(unescape(&b), Some(want), "block() is ambiguous");
    assert_eq!(
        matches!(b, Cow::Borrowed(_)),
        b == s,
        "block() borrowed wrongly"
    );
});
