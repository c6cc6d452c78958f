-- postdesk schema for PostgreSQL (the same tables as SQLite's schema version 6).
-- Timestamps are RFC 3339 text in UTC; lists are JSON text; ids come from sequences.

CREATE TABLE tickets (
    id                BIGSERIAL PRIMARY KEY,
    queue             TEXT    NOT NULL,
    requester         TEXT    NOT NULL,
    subject           TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'open',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    linked_ticket_id  BIGINT  REFERENCES tickets (id)
);
CREATE INDEX tickets_status ON tickets (status, id);

CREATE TABLE messages (
    id                 BIGSERIAL PRIMARY KEY,
    ticket_id          BIGINT  NOT NULL REFERENCES tickets (id),
    -- the content's fingerprint ('fp:<sha256>'): one stored message per key
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
    elided_text        TEXT    NOT NULL DEFAULT '',
    verdict            TEXT    NOT NULL,
    reasons            TEXT    NOT NULL,
    thread_reason      TEXT    NOT NULL,
    raw                BYTEA   NOT NULL
);
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

-- Every Message-ID a stored message references (In-Reply-To and References).
CREATE TABLE message_refs (
    message_id  BIGINT  NOT NULL REFERENCES messages (id),
    ref         TEXT    NOT NULL
);
CREATE INDEX message_refs_ref ON message_refs (ref);

-- Attachment content is kept once: as a byte range of the message's raw bytes, or, where
-- there is no such range, as a decoded copy in `content`.
CREATE TABLE attachments (
    id            BIGSERIAL PRIMARY KEY,
    message_id    BIGINT  NOT NULL REFERENCES messages (id),
    position      INTEGER NOT NULL,
    filename      TEXT,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    content       BYTEA,
    raw_start     BIGINT,
    raw_end       BIGINT,
    damaged       BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((content IS NULL) = (raw_start IS NOT NULL AND raw_end IS NOT NULL))
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE participants (
    ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
    address    TEXT   NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

CREATE TABLE held_messages (
    id                 BIGSERIAL PRIMARY KEY,
    dedup_key          TEXT    NOT NULL UNIQUE,
    action             TEXT    NOT NULL,
    reason             TEXT    NOT NULL,
    detail             TEXT    NOT NULL,
    verdict            TEXT    NOT NULL,
    message_id         TEXT,
    content_hash       TEXT    NOT NULL,
    from_address       TEXT,
    subject            TEXT,
    size               BIGINT  NOT NULL,
    envelope_recipient TEXT,
    queue              TEXT,
    received_at        TEXT    NOT NULL,
    raw                BYTEA,
    headers            BYTEA   NOT NULL,
    released_at        TEXT
);
CREATE INDEX held_messages_message_id ON held_messages (message_id);

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE suppressions (
    address     TEXT PRIMARY KEY,
    status      TEXT,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
