-- Version 7: IMAP fetching (issue 16).

-- One row per message taken from an IMAP folder, written in the transaction that stores
-- the message: what makes `poll` exactly once. `after_done` is 0 while the configured
-- after-action (\Seen, MOVE) is still to be done for it.
CREATE TABLE imap_uids (
    mailbox      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    after_done   INTEGER NOT NULL,
    stored_at    TEXT    NOT NULL,
    PRIMARY KEY (mailbox, folder, uidvalidity, uid)
) WITHOUT ROWID;
CREATE INDEX imap_uids_pending ON imap_uids (mailbox, folder, uidvalidity) WHERE after_done = 0;

-- Who works on a mailbox now; a lease past `expires_ms` (Unix milliseconds) is free.
CREATE TABLE imap_leases (
    mailbox     TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  INTEGER NOT NULL
);

-- Each mailbox's last fetches, for `postdesk mailboxes`.
CREATE TABLE imap_health (
    mailbox               TEXT    PRIMARY KEY,
    last_attempt_at       TEXT,
    last_success_at       TEXT,
    last_error_at         TEXT,
    last_error            TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    messages_total        INTEGER NOT NULL DEFAULT 0,
    last_run_messages     INTEGER NOT NULL DEFAULT 0
);
