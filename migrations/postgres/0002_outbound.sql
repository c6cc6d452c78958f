-- postdesk outbox for PostgreSQL: the same table as SQLite schema version 7. Outgoing mail
-- is queued here in the transaction that stores the ticket's message and sent after the
-- commit; a skipped acknowledgement is a row too, with its reason.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    ticket_id        BIGINT  NOT NULL REFERENCES tickets (id),
    kind             TEXT    NOT NULL,           -- ack | reply
    status           TEXT    NOT NULL,           -- queued | sent | failed | skipped
    reason           TEXT,
    recipient        TEXT,                       -- lower-cased, counted by the rate limits
    recipients       TEXT    NOT NULL DEFAULT '[]',
    envelope_from    TEXT,                       -- NULL: the null sender <>
    message_id       TEXT,
    subject          TEXT,
    raw              BYTEA,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    lease_until      TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id, id);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
CREATE INDEX outbox_created ON outbox (kind, created_at);
