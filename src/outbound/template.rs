//! Acknowledgement templates: minijinja, built-in English and Russian in a formal and an
//! informal style, each replaceable by a file of the same name in
//! `[outbound] template_dir`. Which language: [`detect_language`]. Pure once loaded.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::Environment;

use super::OutboundError;
use super::config::Style;

/// The languages of the built-in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English (the fallback).
    En,
    /// Russian.
    Ru,
}

impl Language {
    /// The code in template names (`en`, `ru`).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
        }
    }
}

/// The built-in templates: (name, source).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "ack.en.formal.subject.j2",
        include_str!("templates/ack.en.formal.subject.j2"),
    ),
    (
        "ack.en.formal.txt.j2",
        include_str!("templates/ack.en.formal.txt.j2"),
    ),
    (
        "ack.en.informal.subject.j2",
        include_str!("templates/ack.en.informal.subject.j2"),
    ),
    (
        "ack.en.informal.txt.j2",
        include_str!("templates/ack.en.informal.txt.j2"),
    ),
    (
        "ack.ru.formal.subject.j2",
        include_str!("templates/ack.ru.formal.subject.j2"),
    ),
    (
        "ack.ru.formal.txt.j2",
        include_str!("templates/ack.ru.formal.txt.j2"),
    ),
    (
        "ack.ru.informal.subject.j2",
        include_str!("templates/ack.ru.informal.subject.j2"),
    ),
    (
        "ack.ru.informal.txt.j2",
        include_str!("templates/ack.ru.informal.txt.j2"),
    ),
];

/// Words of a list file (`rules/*.txt`): one per line, `#` comments.
fn words(list: &'static str) -> Vec<&'static str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

static RU_LATIN: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| words(include_str!("rules/ru-latin-words.txt")));
static EN: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| words(include_str!("rules/en-words.txt")));

/// The language of a message: its `Content-Language` when that names one we have, else
/// the script of its new text and subject (Cyrillic letters outnumbering Latin ones:
/// Russian), else its words (Russian typed in Latin letters, `rules/ru-latin-words.txt`,
/// against common English ones), else English.
pub fn detect_language(content_language: Option<&str>, subject: &str, text: &str) -> Language {
    if let Some(cl) = content_language {
        for tag in cl.split(',') {
            let primary = tag.trim().split(['-', '_', ';']).next().unwrap_or("");
            if primary.eq_ignore_ascii_case("ru") {
                return Language::Ru;
            }
            if primary.eq_ignore_ascii_case("en") {
                return Language::En;
            }
        }
    }
    let (mut cyrillic, mut latin) = (0usize, 0usize);
    for c in subject.chars().chain(text.chars()).take(20_000) {
        if ('\u{0400}'..='\u{04ff}').contains(&c) {
            cyrillic += 1;
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        }
    }
    if cyrillic > latin {
        return Language::Ru;
    }
    let mut ru = std::collections::BTreeSet::new();
    let mut en = std::collections::BTreeSet::new();
    let text = format!("{subject} {text}").to_lowercase();
    for w in text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .take(2000)
    {
        if RU_LATIN.contains(&w) {
            ru.insert(w.to_string());
        } else if EN.contains(&w) {
            en.insert(w.to_string());
        }
    }
    if ru.len() >= 2 && ru.len() > en.len() {
        Language::Ru
    } else {
        Language::En
    }
}

/// The variables of an acknowledgement template.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AckContext {
    /// The ticket's reference, `PD-42`.
    pub ticket: String,
    /// The ticket's subject (reply prefixes and tags removed).
    pub subject: String,
    /// The requester's display name, if they gave one.
    pub requester_name: Option<String>,
    /// The requester's address.
    pub requester_address: String,
    /// The queue.
    pub queue: String,
    /// The address replies go to.
    pub reply_address: String,
    /// When postdesk received the message (`2026-12-07 10:00 UTC`).
    pub received_at: String,
    /// The queue's extra variables (`[outbound.queues.NAME.vars]`).
    pub vars: BTreeMap<String, String>,
}

/// A rendered acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    /// The subject line (one line).
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part, when an `.html.j2` template exists.
    pub html: Option<String>,
}

/// The loaded templates.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, each replaced by the file of the same name in `dir` when
    /// there is one (and `ack.LANG.STYLE.html.j2` files added).
    pub fn load(dir: Option<&Path>) -> Result<Templates, OutboundError> {
        let mut env = Environment::new();
        for (name, source) in BUILT_IN {
            env.add_template(name, source)
                .map_err(|e| OutboundError::Template(e.to_string()))?;
        }
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir).map_err(|e| {
                OutboundError::Template(format!("template_dir {}: {e}", dir.display()))
            })?;
            for entry in entries {
                let entry = entry.map_err(|e| OutboundError::Template(e.to_string()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".j2") {
                    continue;
                }
                let source = std::fs::read_to_string(entry.path()).map_err(|e| {
                    OutboundError::Template(format!("{}: {e}", entry.path().display()))
                })?;
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| OutboundError::Template(format!("{name}: {e}")))?;
            }
        }
        Ok(Templates { env })
    }

    /// Render the acknowledgement in `language` and `style`.
    pub fn acknowledgement(
        &self,
        language: Language,
        style: Style,
        cx: &AckContext,
    ) -> Result<Rendered, OutboundError> {
        let base = format!("ack.{}.{}", language.as_str(), style.as_str());
        let render = |part: &str| -> Result<Option<String>, OutboundError> {
            let name = format!("{base}.{part}.j2");
            match self.env.get_template(&name) {
                Ok(t) => t
                    .render(minijinja::value::Serde(cx))
                    .map(Some)
                    .map_err(|e| OutboundError::Template(format!("{name}: {e}"))),
                Err(_) => Ok(None),
            }
        };
        let missing = |part: &str| OutboundError::Template(format!("no template {base}.{part}.j2"));
        let subject = render("subject")?.ok_or_else(|| missing("subject"))?;
        let text = render("txt")?.ok_or_else(|| missing("txt"))?;
        Ok(Rendered {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text,
            html: render("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> AckContext {
        AckContext {
            ticket: "PD-7".into(),
            subject: "Printer on fire".into(),
            requester_name: Some("Ann".into()),
            requester_address: "ann@example.org".into(),
            queue: "support".into(),
            reply_address: "support@example.com".into(),
            received_at: "2026-12-07 10:00 UTC".into(),
            vars: BTreeMap::new(),
        }
    }

    #[test]
    fn languages() {
        assert_eq!(detect_language(Some("ru-RU"), "Hello", ""), Language::Ru);
        assert_eq!(detect_language(Some("en"), "Привет", "Текст"), Language::En);
        assert_eq!(detect_language(Some("de"), "Принтер", ""), Language::Ru);
        assert_eq!(
            detect_language(None, "Re: order 42", "Не работает принтер"),
            Language::Ru
        );
        assert_eq!(detect_language(None, "", ""), Language::En);
        assert_eq!(
            detect_language(
                None,
                "zakaz 42",
                "Zdravstvuyte, u menya ne rabotaet printer"
            ),
            Language::Ru
        );
        assert_eq!(
            detect_language(None, "Order", "Hello, my order is not here, can you help?"),
            Language::En
        );
        assert_eq!(detect_language(None, "Privet", "thanks"), Language::En);
    }

    #[test]
    fn every_built_in_renders_with_the_reference() {
        let t = Templates::load(None).unwrap();
        for lang in [Language::En, Language::Ru] {
            for style in [Style::Formal, Style::Informal] {
                let r = t.acknowledgement(lang, style, &cx()).unwrap();
                assert!(r.subject.starts_with("[PD-7] "), "{r:?}");
                assert!(r.text.contains("PD-7") && r.text.contains("Ann"), "{r:?}");
                assert!(r.html.is_none());
            }
        }
        let formal = t
            .acknowledgement(Language::Ru, Style::Formal, &cx())
            .unwrap();
        assert!(formal.text.contains("Вас"), "{}", formal.text);
        let informal = t
            .acknowledgement(Language::Ru, Style::Informal, &cx())
            .unwrap();
        assert!(informal.text.contains("тебе"), "{}", informal.text);
    }

    #[test]
    fn files_override_and_html_is_escaped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ack.en.formal.subject.j2"),
            "Ticket {{ ticket }}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("ack.en.formal.html.j2"),
            "<p>{{ subject }}</p>",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let mut c = cx();
        c.subject = "<b>x</b>".into();
        let r = t.acknowledgement(Language::En, Style::Formal, &c).unwrap();
        assert_eq!(r.subject, "Ticket PD-7");
        assert_eq!(r.html.as_deref(), Some("<p>&lt;b&gt;x&lt;&#x2f;b&gt;</p>"));
    }
}
