//! `address::mailboxes` and `address::mailbox` on arbitrary text: every address returned
//! has a non-empty local part and domain and no control character, parses back to itself,
//! there are at most `MAX_MAILBOXES`, and `mailbox` is the first of `mailboxes`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postdesk::address::{MAX_MAILBOXES, mailbox, mailboxes};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let list = mailboxes(&input);
    assert!(list.len() <= MAX_MAILBOXES);
    for m in &list {
        let at = m.address.rfind('@').expect("an address without @");
        assert!(at > 0, "empty local part: {:?}", m.address);
        assert!(at + 1 < m.address.len(), "empty domain: {:?}", m.address);
        assert_ne!(&m.address[..at], "\"\"", "empty quoted local part");
        assert!(
            !m.address.chars().any(char::is_control),
            "control character in {:?}",
            m.address
        );
        let domain = &m.address[at + 1..];
        assert_eq!(domain, domain.to_lowercase(), "domain not lower-cased");
        let again = mailboxes(&m.address);
        assert_eq!(again.len(), 1, "{:?} does not parse back", m.address);
        assert_eq!(again[0].address, m.address, "not canonical");
        if let Some(name) = &m.name {
            assert!(
                !name.is_empty() && name.trim() == name,
                "untrimmed name {name:?}"
            );
        }
    }
    assert_eq!(mailbox(&input), list.into_iter().next());
});
