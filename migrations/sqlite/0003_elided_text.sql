-- The part of each message's text that reply trimming cut away (quoted history,
-- signatures), kept beside the new text and the full body.
ALTER TABLE messages ADD COLUMN elided_text TEXT NOT NULL DEFAULT '';
