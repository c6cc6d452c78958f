//! `cargo bench --bench trim`: how long `trim::trim_reply` takes on
//! bodies of about 1 MB built to hit every rule at once (long lines, lines that almost are
//! quote headers, header-like lines, deep quotes, HTML with quote markers in its text).
//! Every case should take a few milliseconds: the trimmer is linear in the body size.

use std::time::Instant;

use postdesk::trim::trim_reply;

const SIZE: usize = 1 << 20;

fn fill(unit: &str) -> String {
    unit.repeat(SIZE / unit.len() + 1)
}

fn main() {
    let cases: Vec<(&str, String, Option<String>)> = vec![
        ("one long line", fill("On 2025 wrote "), None),
        (
            "almost quote headers",
            fill("On Tue, 4 Mar 2025 at 09:12, Desk <desk@example.com>\n"),
            None,
        ),
        (
            "header-like lines",
            fill("From: a@example.org\nDate: 2025\nTo: b\nX: y\n"),
            None,
        ),
        ("deep quotes", fill(">>>>>>>>>> On 2025 wrote:\n"), None),
        ("delimiters", fill("-- \n____\nSent from my iPhone\n"), None),
        (
            "interleaved",
            fill("text\nOn 4 Mar 2025 Desk <d@example.com> wrote:\n> q\n"),
            None,
        ),
        (
            "html markers in text",
            String::new(),
            Some(fill("gmail_quote divRplyFwdMsg moz-cite-prefix ")),
        ),
    ];
    for (name, text, html) in cases.iter().chain(&cases) {
        let start = Instant::now();
        let t = trim_reply(text, html.as_deref());
        println!(
            "{name:<24} {:>8.1} ms  (new text {} bytes)",
            start.elapsed().as_secs_f64() * 1000.0,
            t.new_text.len()
        );
    }
}
