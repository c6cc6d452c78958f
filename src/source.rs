//! Reading messages from files for `postdesk import`: mbox files, Maildir folders, folders of
//! `.eml` files and single messages. I/O edge; messages stream one at a time, so an mbox of
//! any size is imported in bounded memory.
//!
//! mail-parser's `mailbox` readers are not used, for two reasons a test shows or the design
//! needs. Its mbox iterator starts a message at every line that begins with `From `, even
//! inside a paragraph of a file whose writer did not escape it (losing that line), and keeps the blank line
//! that separates messages in the message before ([`MboxReader`] needs a blank line first,
//! as mutt and RFC 4155's "default" format do, and drops it). Its Maildir iterator reads
//! every message whole in directory order, while `import` lists the files, orders them by
//! their `Date:` (replies after what they answer) and then reads each once.
//!
//! A folder holds more than mail: postdesk's own SQLite database and its `-wal`, `-shm`
//! and `-journal` files, notes (`README.txt`), binaries. Whether a file is mail is decided
//! from its first [`SNIFF_BYTES`] bytes, whatever its name ([`sniff`]):
//! - `SQLite format 3\0` at the start: a database, skipped;
//! - `From ` at the start, then a header field line: an mbox;
//! - after an optional byte-order mark and blank lines (and an optional `From ` line), a
//!   header field line (`Name:`, the name printable ASCII without spaces) followed by the
//!   end of the window, a blank line, a folded line or another header field line: one
//!   message;
//! - anything else is skipped: as binary when it holds a NUL byte, as empty when it has
//!   no bytes, else as text that is not mail.
//!
//! A message whose body holds NUL bytes is still mail: only what comes first decides.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One message read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// Where it came from: `path` or `path#N` (N-th message of an mbox, from 1).
    pub origin: String,
    /// The message bytes.
    pub raw: Vec<u8>,
}

/// The files an import path stands for, in processing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFile {
    /// An mbox file (starts with a `From ` line).
    Mbox(PathBuf),
    /// One message per file (`.eml`, a Maildir entry).
    Single(PathBuf),
}

impl SourceFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            SourceFile::Mbox(p) | SourceFile::Single(p) => p,
        }
    }
}

/// How many bytes at the start of a file [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 4096;

/// Why a file is not imported: what its first bytes are (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotMail {
    /// No bytes at all.
    Empty,
    /// An SQLite database (`SQLite format 3\0`), e.g. postdesk's own.
    Database,
    /// NUL bytes and no header block: a binary, a WAL or journal file, an image.
    Binary,
    /// Text that does not begin with a header field or an mbox `From ` line (notes).
    Text,
}

impl std::fmt::Display for NotMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotMail::Empty => "an empty file",
            NotMail::Database => "an SQLite database",
            NotMail::Binary => "binary data, not mail",
            NotMail::Text => "text that does not begin with a header field or a From line",
        })
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// An mbox file.
    Mbox,
    /// One message.
    Message,
    /// Not mail.
    NotMail(NotMail),
}

/// Whether `head`, the first bytes of a file (up to [`SNIFF_BYTES`]; all of it when
/// shorter), is mail: the rules of the module documentation. Pure and cheap.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.is_empty() {
        return Sniffed::NotMail(NotMail::Empty);
    }
    if head.starts_with(b"SQLite format 3\0") {
        return Sniffed::NotMail(NotMail::Database);
    }
    // The whole file is in `head` when it is shorter than the window.
    let whole = head.len() < SNIFF_BYTES;
    let mut rest = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    // Blank (white-space-only) lines before the header block, as the parser skips them.
    while let Some((line, next)) = split_line(rest) {
        if !line.iter().all(|b| matches!(b, b' ' | b'\t')) {
            break;
        }
        rest = next;
    }
    // An mbox `From ` line (or one such envelope line before a single message): a header
    // field line follows it. Only that one line is asked for: one odd message must not
    // leave out a whole mbox.
    let envelope = rest.starts_with(b"From ");
    let header = if envelope {
        match split_line(rest) {
            Some((_, next)) => match split_line(next) {
                Some((line, _)) => field_line(line, true),
                None => field_line(next, whole),
            },
            None => !whole,
        }
    } else {
        begins_with_header(rest, whole)
    };
    match () {
        _ if header && envelope && head.starts_with(b"From ") => Sniffed::Mbox,
        _ if header => Sniffed::Message,
        _ if head.contains(&0) => Sniffed::NotMail(NotMail::Binary),
        _ => Sniffed::NotMail(NotMail::Text),
    }
}

/// Whether `text` begins with a header block: a header field line, then the end of the
/// window, a blank line, a folded line or another header field line. `whole`: `text`
/// runs to the end of the file (else to the end of the window).
fn begins_with_header(text: &[u8], whole: bool) -> bool {
    let Some((first, next)) = split_line(text) else {
        return field_line(text, whole);
    };
    if !field_line(first, true) {
        return false;
    }
    let (second, complete) = match split_line(next) {
        Some((line, _)) => (line, true),
        None => (next, whole),
    };
    second.is_empty() || matches!(second[0], b' ' | b'\t') || field_line(second, complete)
}

/// The first line of `bytes` without its end (LF, CRLF or a lone CR) and what follows it;
/// `None` when `bytes` has no line end.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n' || b == b'\r')?;
    let skip = if bytes[end..].starts_with(b"\r\n") {
        2
    } else {
        1
    };
    Some((&bytes[..end], &bytes[end + skip..]))
}

/// Whether `line` begins like a header field: a name of printable ASCII without spaces or
/// colons, optional blanks (obsolete syntax), a colon. A `line` cut off before its colon
/// (`complete` false) passes while what there is could still be one.
fn field_line(line: &[u8], complete: bool) -> bool {
    let name = line
        .iter()
        .take_while(|&&b| (0x21..=0x7e).contains(&b) && b != b':')
        .count();
    if name == 0 && (complete || !line.is_empty()) {
        return false;
    }
    let blanks = line[name..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match line.get(name + blanks) {
        Some(b':') => true,
        Some(_) => false,
        None => !complete,
    }
}

/// A file an import leaves out because it is not mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// What it is instead.
    pub reason: NotMail,
    /// It was named on its own (not found in a folder): worth a warning.
    pub named: bool,
}

/// What import paths stand for: the mail files in processing order, and the files left
/// out because they are not mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Mail files, in processing order.
    pub files: Vec<SourceFile>,
    /// Files that are not mail, in path order.
    pub skipped: Vec<Skipped>,
}

impl Expansion {
    /// Add the expansion of another path after this one's.
    pub fn extend(&mut self, other: Expansion) {
        self.files.extend(other.files);
        self.skipped.extend(other.skipped);
    }
}

/// Expand `path` into the files to import, in processing order: the file itself, or a
/// folder's (or Maildir's) messages in the order of their `Date:` (ties, and messages
/// without a usable date after them, by path), then its mbox files by path. Mail is
/// taken in the order it was written, so replies come after what they answer. Files that
/// are not mail ([`sniff`]) are left out and listed in [`Expansion::skipped`].
pub fn expand(path: &Path) -> io::Result<Expansion> {
    let mut skipped = Vec::new();
    let mut files = expand_by_name(path, &mut skipped)?;
    if let [s] = &mut skipped[..]
        && s.path == path
    {
        s.named = true;
    }
    if files.len() > 1 {
        let mut keyed: Vec<(u8, i64, SourceFile)> = files
            .drain(..)
            .map(|f| match &f {
                SourceFile::Single(p) => {
                    let date = date_of(p);
                    (u8::from(date.is_none()), date.unwrap_or(0), f)
                }
                SourceFile::Mbox(_) => (2, 0, f),
            })
            .collect();
        // Stable: equal keys keep path order.
        keyed.sort_by_key(|(rank, date, _)| (*rank, *date));
        files = keyed.into_iter().map(|(_, _, f)| f).collect();
    }
    Ok(Expansion { files, skipped })
}

/// The `Date:` of the message in file `path`, as seconds since the epoch, read from its
/// header block only.
fn date_of(path: &Path) -> Option<i64> {
    let mut head = Vec::with_capacity(16 * 1024);
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    crate::parse::date_of(&head)
}

fn expand_by_name(path: &Path, skipped: &mut Vec<Skipped>) -> io::Result<Vec<SourceFile>> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(match classify_file(path)? {
            Ok(f) => vec![f],
            Err(reason) => {
                skipped.push(Skipped {
                    path: path.to_path_buf(),
                    reason,
                    named: false,
                });
                Vec::new()
            }
        });
    }
    let mut out = Vec::new();
    if path.join("cur").is_dir() && path.join("new").is_dir() {
        let mut entries = Vec::new();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(path.join(sub))? {
                let e = e?;
                if e.file_type()?.is_file() {
                    entries.push(e.path());
                }
            }
        }
        entries.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        for e in entries {
            match classify_file(&e)? {
                Ok(SourceFile::Mbox(_)) | Ok(SourceFile::Single(_)) => {
                    out.push(SourceFile::Single(e))
                }
                Err(reason) => skipped.push(Skipped {
                    path: e,
                    reason,
                    named: false,
                }),
            }
        }
        return Ok(out);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for e in entries {
        let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') && !e.join("cur").is_dir() || name == "tmp" {
            continue;
        }
        out.extend(expand_by_name(&e, skipped)?);
    }
    Ok(out)
}

/// The file at `path` as a source, or why it is not mail ([`sniff`] of its first bytes).
fn classify_file(path: &Path) -> io::Result<Result<SourceFile, NotMail>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(match sniff(&head) {
        Sniffed::Mbox => Ok(SourceFile::Mbox(path.to_path_buf())),
        Sniffed::Message => Ok(SourceFile::Single(path.to_path_buf())),
        Sniffed::NotMail(reason) => Err(reason),
    })
}

/// Iterate the messages of one source file.
pub fn messages(
    file: &SourceFile,
) -> io::Result<Box<dyn Iterator<Item = io::Result<SourceMessage>>>> {
    match file {
        SourceFile::Single(p) => {
            let p = p.clone();
            Ok(Box::new(std::iter::once_with(move || {
                Ok(SourceMessage {
                    origin: p.display().to_string(),
                    raw: std::fs::read(&p)?,
                })
            })))
        }
        SourceFile::Mbox(p) => Ok(Box::new(MboxReader::new(
            BufReader::with_capacity(1 << 20, File::open(p)?),
            p.display().to_string(),
        ))),
    }
}

/// Splits an mbox stream into messages.
///
/// A message starts at a `From ` line at the beginning of the stream or after an empty line.
/// `>From ` escaping is undone one level (mboxrd), and the empty line that separates
/// messages is not part of the message.
#[derive(Debug)]
pub struct MboxReader<R> {
    reader: R,
    origin: String,
    count: usize,
    /// The `From ` line that starts the next message has been consumed.
    pending: bool,
    done: bool,
}

impl<R: BufRead> MboxReader<R> {
    /// A reader over `reader`; `origin` names it in [`SourceMessage::origin`].
    pub fn new(reader: R, origin: String) -> Self {
        MboxReader {
            reader,
            origin,
            count: 0,
            pending: false,
            done: false,
        }
    }

    fn next_message(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if !self.pending {
            // Skip anything before the first separator.
            loop {
                line.clear();
                if self.reader.read_until(b'\n', &mut line)? == 0 {
                    return Ok(None);
                }
                if line.starts_with(b"From ") {
                    break;
                }
            }
        }
        self.pending = false;
        let mut msg = Vec::new();
        let mut prev_blank = false;
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if prev_blank && line.starts_with(b"From ") {
                self.pending = true;
                // Drop the separating empty line.
                let cut = if msg.ends_with(b"\r\n") { 2 } else { 1 };
                msg.truncate(msg.len().saturating_sub(cut));
                break;
            }
            prev_blank = line == b"\n" || line == b"\r\n";
            let from_escape = line.iter().position(|&b| b != b'>');
            match from_escape {
                Some(i) if i > 0 && line[i..].starts_with(b"From ") => {
                    msg.extend_from_slice(&line[1..])
                }
                _ => msg.extend_from_slice(&line),
            }
        }
        Ok(Some(msg))
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = io::Result<SourceMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_message() {
            Ok(Some(raw)) => {
                self.count += 1;
                Some(Ok(SourceMessage {
                    origin: format!("{}#{}", self.origin, self.count),
                    raw,
                }))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        MboxReader::new(text.as_bytes(), "t".into())
            .map(|m| String::from_utf8(m.unwrap().raw).unwrap())
            .collect()
    }

    #[test]
    fn mbox_splits_and_unescapes() {
        let mbox = "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From the start\n\nFrom b@c Mon Jan  1 00:00:00 2024\nSubject: two\n\n>From here on, text\n>>From quoted\n";
        assert_eq!(
            split(mbox),
            vec![
                "Subject: one\n\nbody\nFrom the start\n",
                "Subject: two\n\nFrom here on, text\n>From quoted\n"
            ]
        );
    }

    /// Why `MboxReader` is not mail-parser's `mailbox::mbox::MessageIterator`: on the same
    /// file that one takes the line "From Berlin by train." for a separator (the line is
    /// lost and the rest of the message becomes a message of its own) and keeps the
    /// separating blank line. (When it stops doing so, this test says so.)
    #[test]
    fn mail_parsers_mbox_iterator_splits_inside_a_paragraph() {
        let mbox = "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nWe came\nFrom Berlin by train.\n\nFrom b@c Mon Jan  1 00:00:00 2024\nSubject: two\n\nbody\n";
        assert_eq!(
            split(mbox),
            vec![
                "Subject: one\n\nWe came\nFrom Berlin by train.\n",
                "Subject: two\n\nbody\n"
            ]
        );
        let theirs: Vec<String> = mail_parser::mailbox::mbox::MessageIterator::new(mbox.as_bytes())
            .map(|m| String::from_utf8(m.unwrap().unwrap_contents()).unwrap())
            .collect();
        assert_eq!(
            theirs,
            vec!["Subject: one\n\nWe came\n", "\n", "Subject: two\n\nbody\n"]
        );
    }

    #[test]
    fn sniff_tells_mail_from_what_is_not() {
        let mail = [
            &b"From: ann@example.org\r\nSubject: x\r\n\r\nbody\0with a NUL\r\n"[..],
            b"Return-Path: <a@b>\nDelivered-To: s@x\n",
            b"Subject: folded\n  on two lines\n",
            b"\xef\xbb\xbf\r\n\r\nFrom: a@b\r\n\r\n",
            b"Subject : obsolete blank before the colon\n\nx",
            b"Subject: only one line",
            b"From: a@b\rSubject: bare CR\r\rbody",
            b"\nFrom a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n",
        ];
        for m in mail {
            assert_eq!(
                sniff(m),
                Sniffed::Message,
                "{:?}",
                String::from_utf8_lossy(m)
            );
        }
        assert_eq!(
            sniff(b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n"),
            Sniffed::Mbox
        );
        let not = [
            (&b""[..], NotMail::Empty),
            (b"SQLite format 3\0\x20\x00\x02\x02", NotMail::Database),
            (b"\x37\x7f\x06\x82\x00\x2d\xe2\x18\0\0", NotMail::Binary),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", NotMail::Binary),
            (b"Mail export of 2019\n\nSee the folders.\n", NotMail::Text),
            (
                b"Note: exported by hand\nfrom the old server.\n",
                NotMail::Text,
            ),
            (
                b"Note: exported by hand\nfrom the old server.",
                NotMail::Text,
            ),
            (
                b"From the desk of Ann\nThis folder holds mail.\n",
                NotMail::Text,
            ),
            (b"\n\n  \n", NotMail::Text),
            (b"no line end", NotMail::Text),
        ];
        for (bytes, why) in not {
            assert_eq!(
                sniff(bytes),
                Sniffed::NotMail(why),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Cut off by the window: judged by what there is.
        let mut long = b"X-Long: ".to_vec();
        long.resize(SNIFF_BYTES, b'a');
        assert_eq!(sniff(&long), Sniffed::Message);
        let mut two = b"Subject: x\n".to_vec();
        two.resize(SNIFF_BYTES, b'b');
        assert_eq!(sniff(&two), Sniffed::Message);
    }

    #[test]
    fn mbox_keeps_crlf_and_handles_empty_input() {
        assert!(split("").is_empty());
        assert_eq!(
            split("From x\r\nA: 1\r\n\r\nb\r\n"),
            vec!["A: 1\r\n\r\nb\r\n"]
        );
    }
}

/// Read all of `input` (a message on standard input), keeping at most `cap` bytes and
/// counting the rest. Returns the kept bytes and the total size. Reading everything
/// matters: an MTA treats a pipe command that exits before the end of its input as a
/// failure or, worse, as delivered.
pub fn read_capped<R: Read>(mut input: R, cap: u64) -> io::Result<(Vec<u8>, u64)> {
    let mut kept = Vec::new();
    (&mut input).take(cap).read_to_end(&mut kept)?;
    // The rest is counted, not kept (`io::copy` retries on EINTR).
    let dropped = io::copy(&mut input, &mut io::sink())?;
    let total = kept.len() as u64 + dropped;
    Ok((kept, total))
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn read_capped_counts_what_it_drops() {
        let data = vec![b'x'; 100_000];
        let (kept, total) = read_capped(&data[..], 10).unwrap();
        assert_eq!((kept.len(), total), (10, 100_000));
        let (kept, total) = read_capped(&data[..], 1 << 20).unwrap();
        assert_eq!((kept.len(), total), (100_000, 100_000));
    }
}
