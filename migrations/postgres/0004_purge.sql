-- What `postdesk purge` needs (the same indexes as SQLite's schema version 9): deleting a
-- message checks the rows that reference it (foreign keys), and deleting a ticket checks
-- the tickets that link to it; both need an index on the referencing column.
CREATE INDEX message_refs_message ON message_refs (message_id);
CREATE INDEX tickets_linked ON tickets (linked_ticket_id);
