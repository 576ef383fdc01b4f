-- API keys: only a hash of each key's secret is kept. Times are Unix milliseconds.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL,
    user_name   TEXT,
    team        TEXT,
    app         TEXT,
    roles       TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    replaced_by TEXT
);

-- A counter per table that running gateways poll, so a change made by another process
-- (`portcullis keys revoke`) reaches them without a restart.
CREATE TABLE versions (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO versions (name, version) VALUES ('api_keys', 0);
