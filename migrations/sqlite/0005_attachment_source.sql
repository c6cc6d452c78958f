-- Attachment content is kept once: as a byte range of the message's raw bytes (the MIME
-- part, header fields included, which decodes on its own), or, where the parser gave no
-- such range, as a decoded copy in `content`.
CREATE TABLE attachments_v5 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    INTEGER NOT NULL REFERENCES messages (id),
    position      INTEGER NOT NULL,
    filename      TEXT,
    content_type  TEXT    NOT NULL,
    -- decoded size in bytes
    size          INTEGER NOT NULL,
    content       BLOB,
    raw_start     INTEGER,
    raw_end       INTEGER,
    CHECK ((content IS NULL) = (raw_start IS NOT NULL AND raw_end IS NOT NULL))
);
INSERT INTO attachments_v5 (id, message_id, position, filename, content_type, size, content)
    SELECT id, message_id, position, filename, content_type, size, content FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_v5 RENAME TO attachments;
CREATE INDEX attachments_message ON attachments (message_id);
