-- Threading, version 2: the shared HMAC secret and links between tickets.

CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- A follow-up to a closed ticket can start a new ticket that links to it.
ALTER TABLE tickets ADD COLUMN linked_ticket_id INTEGER REFERENCES tickets (id);
