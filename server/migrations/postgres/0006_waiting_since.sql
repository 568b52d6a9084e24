-- Since when a deployment has been waiting for AWS (as server/migrations/sqlite/0009_waiting_since.sql).
ALTER TABLE deployments ADD COLUMN waiting_since TEXT;
