-- Version 6: what threading and deduplication need to be exact.

-- Every Message-ID a stored message references (In-Reply-To and References), so that an
-- original arriving after its reply finds the reply's ticket.
CREATE TABLE message_refs (
    message_id  INTEGER NOT NULL REFERENCES messages (id),
    ref         TEXT    NOT NULL
);
CREATE INDEX message_refs_ref ON message_refs (ref);

-- A reused Message-ID is looked up among held records too.
CREATE INDEX held_messages_message_id ON held_messages (message_id);

-- An attachment whose transfer encoding was broken: its content is what could be decoded.
ALTER TABLE attachments ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
