-- What each session has taken in (toxic flows), shared by every gateway on this store so a
-- session that moves to another replica keeps its history. Times are Unix milliseconds.
CREATE TABLE session_taint (
    caller  TEXT NOT NULL,
    session TEXT NOT NULL,   -- '' for clients without sessions (stdio, 2026-07-28)
    label   TEXT NOT NULL,   -- untrusted_content, private_data, ...
    source  TEXT NOT NULL,   -- the tool or resource that brought it in
    at      BIGINT NOT NULL,
    PRIMARY KEY (caller, session, label)
);
CREATE INDEX session_taint_at ON session_taint (at);
