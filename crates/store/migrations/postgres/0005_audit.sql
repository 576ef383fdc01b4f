-- The audit log: one row per exchange. Each row's hash covers its fields and the hash of the
-- row before it, so an edited, inserted or deleted row breaks the chain (`portcullis audit
-- verify`). The columns are what queries filter on; `body` is the whole event as JSON.
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,    -- 1, 2, 3, ... with no gaps
    at        BIGINT NOT NULL,       -- Unix milliseconds
    caller    TEXT NOT NULL,         -- user:alice, app:ci, key:<id>, anonymous
    user_name TEXT NOT NULL,         -- the principal's user, '' if none
    tool      TEXT NOT NULL,         -- the tool, prompt or resource as the client named it
    decision  TEXT NOT NULL,         -- allow, flag, redact, deny, error
    body      TEXT NOT NULL,
    prev      TEXT NOT NULL,         -- the previous row's hash (the anchor for the first)
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);

-- The chain's ends: the last row written, and the last row removed by retention (the anchor
-- the first remaining row must link to). Deleting rows from either end shows up against it.
CREATE TABLE audit_head (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    pruned_seq  BIGINT NOT NULL,
    pruned_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, pruned_seq, pruned_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
        '0000000000000000000000000000000000000000000000000000000000000000');
