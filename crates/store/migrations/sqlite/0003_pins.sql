-- Pinned upstream definitions (rug-pull detection): each server's tools, prompts and
-- resource templates, and its reported identity, by a SHA-256 of a canonical form. A
-- definition seen since approval waits in the pending columns until an operator approves
-- or rejects it. Times are Unix milliseconds.
CREATE TABLE pins (
    server             TEXT NOT NULL,
    kind               TEXT NOT NULL,   -- tool | prompt | template | identity
    name               TEXT NOT NULL,   -- tool or prompt name, URI template, '' for the identity
    hash               TEXT,            -- the approved definition; NULL while a new item awaits approval
    definition         TEXT,
    approved_at        INTEGER,
    approved_by        TEXT,
    pending_hash       TEXT,            -- a definition seen since, awaiting review
    pending_definition TEXT,
    pending_since      INTEGER,
    rejected_hash      TEXT,            -- a definition an operator refused: withheld, not asked about again
    PRIMARY KEY (server, kind, name)
);

-- What happened to each pin, with the definitions before and after.
CREATE TABLE pin_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    server         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    event          TEXT NOT NULL,       -- pinned | new | changed | approved | auto-approved | rejected
    old_hash       TEXT,
    new_hash       TEXT,
    old_definition TEXT,
    new_definition TEXT,
    actor          TEXT
);

INSERT INTO versions (name, version) VALUES ('pins', 0);
