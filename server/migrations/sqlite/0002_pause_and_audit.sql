-- The pause: one row per scope ('*' = every environment, else an environment name).
CREATE TABLE pauses (
    scope  TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    actor  TEXT NOT NULL,
    since  TEXT NOT NULL
);

-- The audit trail: appended to, never updated or deleted by the app.
CREATE TABLE audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    project       TEXT,
    environment   TEXT,
    build         TEXT,
    deployment_id TEXT,
    detail        TEXT
);

CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
