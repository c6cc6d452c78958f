-- IMAP fetching (issue 16); the same tables as SQLite's schema version 8.

-- One row per message taken from an IMAP folder, written in the transaction that stores
-- the message: what makes `poll` exactly once. `after_done` is false while the configured
-- after-action (\Seen, MOVE) is still to be done for it.
CREATE TABLE imap_uids (
    mailbox      TEXT    NOT NULL,
    folder       TEXT    NOT NULL,
    uidvalidity  BIGINT  NOT NULL,
    uid          BIGINT  NOT NULL,
    after_done   BOOLEAN NOT NULL,
    stored_at    TEXT    NOT NULL,
    PRIMARY KEY (mailbox, folder, uidvalidity, uid)
);
CREATE INDEX imap_uids_pending ON imap_uids (mailbox, folder, uidvalidity) WHERE NOT after_done;

-- Who works on a mailbox now; a lease past `expires_ms` (Unix milliseconds, the
-- database server's clock) is free.
CREATE TABLE imap_leases (
    mailbox     TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_ms  BIGINT  NOT NULL
);

-- Each mailbox's last fetches, for `postdesk mailboxes`.
CREATE TABLE imap_health (
    mailbox               TEXT    PRIMARY KEY,
    last_attempt_at       TEXT,
    last_success_at       TEXT,
    last_error_at         TEXT,
    last_error            TEXT,
    consecutive_failures  BIGINT  NOT NULL DEFAULT 0,
    messages_total        BIGINT  NOT NULL DEFAULT 0,
    last_run_messages     BIGINT  NOT NULL DEFAULT 0
);
