//! Data-driven fixture tests: every `tests/fixtures/**/NAME.eml` with a sidecar
//! `NAME.expect.toml` is run through `Processor::explain` (on an empty in-memory store),
//! once as written and once with its line endings flipped (LF <-> CRLF), and the
//! explanation is compared with the expectation.
//!
//! Expectation keys:
//! - any field of `explain --json` (`verdict`, `reply_text`, `subject`, `from`, `action`,
//!   `bounce`, ...): must be equal; a table is compared as a subset (`[bounce]` with only
//!   `status` checks only the status);
//! - `reason_contains = "..."`: some reason contains this text;
//! - `reply_text_contains = [...]`, `reply_text_excludes = [...]`: substrings of the new text.
//!
//! Add a case by adding two files; no code changes.

use std::path::{Path, PathBuf};

use postdesk::store::SqliteStore;
use postdesk::{Config, Processor};
use serde_json::Value;

fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            fixture_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "eml") {
            out.push(p);
        }
    }
}

fn flip_line_endings(raw: &[u8]) -> Vec<u8> {
    if raw.windows(2).any(|w| w == b"\r\n") {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
                i += 1;
                continue;
            }
            out.push(raw[i]);
            i += 1;
        }
        out
    } else {
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
        for &b in raw {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    }
}

/// `expected` is a subset of `actual` (tables recursively; everything else by equality).
fn subset_mismatch(path: &str, expected: &Value, actual: &Value) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().find_map(|(k, ev)| {
            let av = a.get(k).unwrap_or(&Value::Null);
            subset_mismatch(&format!("{path}.{k}"), ev, av)
        }),
        (Value::String(e), Value::String(a)) if path.ends_with("reply_text") => {
            (e.trim_end() != a.trim_end()).then(|| format!("{path}: expected {e:?}, got {a:?}"))
        }
        (e, a) => (e != a).then(|| format!("{path}: expected {e}, got {a}")),
    }
}

fn check(explained: &Value, expect: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in expect {
        let ev = serde_json::to_value(value).unwrap();
        match key.as_str() {
            "reason_contains" => {
                let needle = ev.as_str().unwrap();
                let reasons = explained["reasons"].as_array().cloned().unwrap_or_default();
                if !reasons
                    .iter()
                    .any(|r| r.as_str().unwrap_or("").contains(needle))
                {
                    problems.push(format!("no reason contains {needle:?}: {reasons:?}"));
                }
            }
            "reply_text_contains" | "reply_text_excludes" => {
                let text = explained["reply_text"].as_str().unwrap_or("");
                for n in ev.as_array().unwrap() {
                    let n = n.as_str().unwrap();
                    let found = text.contains(n);
                    if found != (key == "reply_text_contains") {
                        problems.push(format!("{key} {n:?} failed; reply_text = {text:?}"));
                    }
                }
            }
            _ => {
                let actual = explained.get(key).unwrap_or(&Value::Null);
                if let Some(p) = subset_mismatch(key, &ev, actual) {
                    problems.push(p);
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn fixtures_match_their_expectations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    fixture_files(&root, &mut files);
    let store = SqliteStore::in_memory().await.unwrap();
    let processor = Processor::new(Config::default(), store);
    let mut failures = Vec::new();
    let mut run = 0;
    for eml in &files {
        let expect_path = eml.with_extension("expect.toml");
        let Ok(expect_text) = std::fs::read_to_string(&expect_path) else {
            continue;
        };
        let expect: toml::Table = toml::from_str(&expect_text)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let raw = std::fs::read(eml).unwrap();
        for (form, bytes) in [
            ("as written", raw.clone()),
            ("line endings flipped", flip_line_endings(&raw)),
        ] {
            let explained = serde_json::to_value(processor.explain(&bytes).await.unwrap()).unwrap();
            for p in check(&explained, &expect) {
                failures.push(format!(
                    "{} ({form}): {p}",
                    eml.strip_prefix(&root).unwrap().display()
                ));
            }
        }
        run += 1;
    }
    assert!(run > 0, "no fixtures found under {}", root.display());
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{run} fixtures checked");
}

/// The store keeps attachment content as a byte range of the raw message
/// (`Attachment::source`); for every fixture, in both line-ending forms, that range must
/// decode to exactly the content the parser produced.
#[test]
fn attachments_read_back_from_the_raw_message() {
    use postdesk::parse::{ParseLimits, Parsed, parse, part_content};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    fixture_files(&root, &mut files);
    let (mut by_reference, mut failures) = (0, Vec::new());
    for eml in &files {
        let raw = std::fs::read(eml).unwrap();
        for bytes in [raw.clone(), flip_line_endings(&raw)] {
            let Parsed::Message(m) = parse(&bytes, None, &ParseLimits::default()) else {
                continue;
            };
            if eml.ends_with("parse/attachments-mixed.eml") {
                // pdf (base64), log (quoted-printable latin-1), message/rfc822, png
                assert_eq!(m.attachments.len(), 4);
                assert!(m.attachments.iter().all(|a| a.source.is_some()));
            }
            for (i, a) in m.attachments.iter().enumerate() {
                let Some(range) = a.source.clone() else {
                    continue;
                };
                by_reference += 1;
                if part_content(&bytes[range]).as_deref() != Some(a.content.as_slice()) {
                    failures.push(format!("{} attachment {i}", eml.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        by_reference >= 20,
        "only {by_reference} attachments by reference"
    );
}
