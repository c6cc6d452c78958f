-- postdesk schema, version 1 (SQLite).
-- Timestamps are RFC 3339 text in UTC; lists are JSON text.

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    requester   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'open',
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX tickets_status ON tickets (status, id);

CREATE TABLE messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id          INTEGER NOT NULL REFERENCES tickets (id),
    -- 'mid:<Message-ID>' or 'sha256:<hash of raw>': one stored message per key.
    dedup_key          TEXT    NOT NULL UNIQUE,
    message_id         TEXT,
    content_hash       TEXT    NOT NULL,
    envelope_sender    TEXT,
    envelope_recipient TEXT,
    from_address       TEXT,
    from_name          TEXT,
    to_addresses       TEXT    NOT NULL,
    cc_addresses       TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    sent_at            TEXT,
    received_at        TEXT    NOT NULL,
    text_body          TEXT    NOT NULL,
    html_body          TEXT,
    reply_text         TEXT    NOT NULL,
    verdict            TEXT    NOT NULL,
    reasons            TEXT    NOT NULL,
    thread_reason      TEXT    NOT NULL,
    raw                BLOB    NOT NULL
);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    INTEGER NOT NULL REFERENCES messages (id),
    position      INTEGER NOT NULL,
    filename      TEXT,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    content       BLOB    NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE participants (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    address    TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

-- Messages that did not become part of a ticket: quarantined (can be released) or dropped
-- by policy (kept as a record). Nothing is deleted.
CREATE TABLE held_messages (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key          TEXT    NOT NULL UNIQUE,
    action             TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    detail             TEXT    NOT NULL,
    verdict            TEXT    NOT NULL,
    message_id         TEXT,
    content_hash       TEXT    NOT NULL,
    from_address       TEXT,
    subject            TEXT,
    size               INTEGER NOT NULL,
    envelope_recipient TEXT,
    queue              TEXT,
    received_at        TEXT    NOT NULL,
    -- the whole message when it was under the hard cap, else NULL and headers only
    raw                BLOB,
    headers            BLOB    NOT NULL,
    released_at        TEXT
);
