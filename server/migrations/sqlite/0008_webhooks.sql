-- The webhooks' outbox: one row per webhook per announcement, written in the same transaction as
-- the audit entry it announces, so nothing announced is lost and nothing is announced that did
-- not happen. A webhook's rows are delivered in id order, one at a time: a row waits until the
-- one before it is delivered or given up.
CREATE TABLE webhook_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook       TEXT NOT NULL,
    event         TEXT NOT NULL,
    audit_id      INTEGER,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    -- pending, delivered, failed (given up after the last attempt)
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    -- A replica sending it holds it until then (another may take it over after).
    claimed_until TEXT,
    last_error    TEXT,
    delivered_at  TEXT
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (webhook, status, id);
