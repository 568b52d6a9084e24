-- Login: API tokens (stored as SHA-256 hashes of the secret, never the secret), sessions (the
-- cookie holds the secret, the table its hash), and login attempts in flight (state, PKCE
-- verifier and nonce of an OpenID Connect authorization-code flow, kept minutes).
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT,
    last_used_at TEXT
);
CREATE UNIQUE INDEX tokens_one_active_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    groups TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE logins (
    state TEXT PRIMARY KEY,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TEXT NOT NULL
);
