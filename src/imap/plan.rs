//! The pure decisions of a fetch: where to resume, which UIDs, in which batches, and the
//! IMAP sequence sets that name them.

/// The first UID to fetch, given the highest UID recorded for the folder at its current
/// UIDVALIDITY (none: a new folder, or a new UIDVALIDITY, is read from the start).
pub fn first_uid(last_recorded: Option<u32>) -> u32 {
    match last_recorded {
        Some(u) => u.saturating_add(1),
        None => 1,
    }
}

/// The UIDs to fetch, in ascending order, from what `UID SEARCH UID first:*` returned.
/// A server answers `n:*` with the highest message even when its UID is below `n`
/// (RFC 3501: `*` is the largest UID in use, and `n:*` means the range between), so
/// UIDs below `first` are dropped here.
pub fn to_fetch(found: impl IntoIterator<Item = u32>, first: u32) -> Vec<u32> {
    let mut uids: Vec<u32> = found.into_iter().filter(|&u| u >= first).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// An IMAP sequence set naming exactly `uids` (ascending), with runs as ranges:
/// `[1, 2, 3, 7, 9, 10]` → `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_above_the_last_recorded_uid() {
        assert_eq!(first_uid(None), 1);
        assert_eq!(first_uid(Some(41)), 42);
        assert_eq!(first_uid(Some(u32::MAX)), u32::MAX);
    }

    #[test]
    fn the_star_answer_below_the_range_is_dropped() {
        // Server answer to `UID SEARCH UID 43:*` when 42 is the highest UID.
        assert_eq!(to_fetch([42], 43), Vec::<u32>::new());
        assert_eq!(to_fetch([50, 43, 44, 43], 43), vec![43, 44, 50]);
    }

    #[test]
    fn sequence_sets_compress_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    }
}
