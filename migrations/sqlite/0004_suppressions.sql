-- Addresses whose mail bounced permanently: acknowledgements are never sent to them.
CREATE TABLE suppressions (
    address     TEXT PRIMARY KEY,
    status      TEXT,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
