-- The credential vault. Each value is sealed (XChaCha20-Poly1305: 24-byte nonce, then the
-- ciphertext and tag) under the vault key, which never reaches the database. Times are Unix
-- milliseconds.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    version    INTEGER NOT NULL,   -- 1 when created, one more per rotation
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A known value sealed under the vault key when the first secret is stored, so opening
-- the vault with another key says "wrong key" instead of failing secret by secret.
CREATE TABLE vault_meta (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    key_check BLOB NOT NULL
);

INSERT INTO versions (name, version) VALUES ('secrets', 0);
