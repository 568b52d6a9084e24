-- The PostgreSQL schema: the same tables as the SQLite migrations (server/migrations/sqlite)
-- reach after 0005, in one step. Times are kept as UTC text (2026-11-27T10:00:00.123Z), the
-- same on both stores; flags as 0/1; `seq` gives the insertion order SQLite's rowid gives.

CREATE TABLE deployments (
    seq                    BIGSERIAL NOT NULL,
    id                     TEXT PRIMARY KEY,
    project                TEXT NOT NULL,
    environment            TEXT NOT NULL,
    stack_name             TEXT NOT NULL,
    build                  TEXT NOT NULL,
    status                 TEXT NOT NULL,
    operation              TEXT,
    step                   TEXT,
    actor                  TEXT NOT NULL,
    started_at             TEXT NOT NULL,
    finished_at            TEXT,
    message                TEXT,
    rolled_back            BIGINT NOT NULL DEFAULT 0,
    resources_total        BIGINT,
    resources_done         BIGINT NOT NULL DEFAULT 0,
    stack_id               TEXT,
    change_set_name        TEXT,
    change_set             TEXT,
    steps                  TEXT NOT NULL DEFAULT '[]',
    execution_committed_at TEXT,
    executed_at            TEXT,
    cancel_requested_at    TEXT,
    cancel_confirm_delete  BIGINT NOT NULL DEFAULT 0,
    waiting_reason         TEXT,
    no_echo                TEXT
);

-- At most one active deployment per stack, whatever the number of deployer processes.
CREATE UNIQUE INDEX one_active_deployment_per_stack
    ON deployments (environment, stack_name) WHERE finished_at IS NULL;
CREATE INDEX deployments_by_stack ON deployments (project, environment);
CREATE INDEX deployments_in_order ON deployments (seq);

CREATE TABLE stack_events (
    seq           BIGSERIAL NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    event_id      TEXT NOT NULL,
    timestamp     TEXT NOT NULL,
    logical_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    PRIMARY KEY (deployment_id, event_id)
);

-- The pause: one row per scope ('*' = every environment, else an environment name).
CREATE TABLE pauses (
    scope  TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    actor  TEXT NOT NULL,
    since  TEXT NOT NULL
);

-- The audit trail: appended to, never updated or deleted.
CREATE TABLE audit (
    id            BIGSERIAL PRIMARY KEY,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    project       TEXT,
    environment   TEXT,
    build         TEXT,
    deployment_id TEXT,
    detail        TEXT,
    outcome       TEXT
);

CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END;
$$;
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_is_append_only();

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
