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

/// Expand `path` into the files to import, in processing order: the file itself, or a
/// folder's (or Maildir's) messages in the order of their `Date:` (ties, and messages
/// without a usable date after them, by path), then its mbox files by path. Mail is
/// taken in the order it was written, so replies come after what they answer.
pub fn expand(path: &Path) -> io::Result<Vec<SourceFile>> {
    let mut files = expand_by_name(path)?;
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
    Ok(files)
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

fn expand_by_name(path: &Path) -> io::Result<Vec<SourceFile>> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(vec![classify_file(path)?]);
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
        out.extend(entries.into_iter().map(SourceFile::Single));
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
        out.extend(expand_by_name(&e)?);
    }
    Ok(out)
}

fn classify_file(path: &Path) -> io::Result<SourceFile> {
    let mut head = [0u8; 5];
    let mut f = File::open(path)?;
    let n = f.read(&mut head)?;
    Ok(if &head[..n] == b"From " {
        SourceFile::Mbox(path.to_path_buf())
    } else {
        SourceFile::Single(path.to_path_buf())
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
