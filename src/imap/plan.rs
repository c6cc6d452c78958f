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

/// [`to_fetch`] for UIDs with their sizes.
pub fn to_fetch_sized(mut found: Vec<(u32, u64)>, first: u32) -> Vec<(u32, u64)> {
    found.retain(|(u, _)| *u >= first);
    found.sort_unstable_by_key(|(u, _)| *u);
    found.dedup_by_key(|(u, _)| *u);
    found
}

/// The fetch batches: runs of `messages` (UID and size, ascending UIDs), each at most
/// `max_count` messages and, unless one message alone is larger, at most `max_bytes`:
/// a batch is held in memory until its transaction commits.
pub fn batches(messages: &[(u32, u64)], max_count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in messages {
        if !current.is_empty()
            && (current.len() >= max_count.max(1) || bytes.saturating_add(size) > max_bytes)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes = bytes.saturating_add(size);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
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
        assert_eq!(
            to_fetch_sized(vec![(42, 9), (44, 1), (43, 2)], 43),
            vec![(43, 2), (44, 1)]
        );
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        let m = [(1, 10), (2, 10), (3, 10), (4, 10), (5, 10)];
        assert_eq!(batches(&m, 2, 1000), vec![vec![1, 2], vec![3, 4], vec![5]]);
        assert_eq!(batches(&m, 100, 25), vec![vec![1, 2], vec![3, 4], vec![5]]);
        // A message larger than the byte bound travels alone.
        let big = [(1, 5), (2, 500), (3, 5)];
        assert_eq!(batches(&big, 100, 100), vec![vec![1], vec![2], vec![3]]);
        assert_eq!(batches(&[], 10, 10), Vec::<Vec<u32>>::new());
    }

    #[test]
    fn sequence_sets_compress_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    }
}
