-- The webhooks' outbox (as server/migrations/sqlite/0008_webhooks.sql): one row per webhook per
-- announcement, written in the audit entry's transaction, delivered per webhook in id order.
CREATE TABLE webhook_outbox (
    id            BIGSERIAL PRIMARY KEY,
    webhook       TEXT NOT NULL,
    event         TEXT NOT NULL,
    audit_id      BIGINT,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      BIGINT NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    claimed_until TEXT,
    last_error    TEXT,
    delivered_at  TEXT
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (webhook, status, id);
