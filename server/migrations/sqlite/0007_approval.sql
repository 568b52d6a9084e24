-- A protected environment's approval: set when the deployment waits (whether another person must
-- approve), then the decision, who made it and when — written by the approve/discard request,
-- read by whichever replica drives the deployment, kept across restarts.
ALTER TABLE deployments ADD COLUMN approval_by_another INTEGER;
ALTER TABLE deployments ADD COLUMN approval_decision TEXT;
ALTER TABLE deployments ADD COLUMN approval_by TEXT;
ALTER TABLE deployments ADD COLUMN approval_at TEXT;
-- Confirmed by the one who asked: a stack whose first create failed (ROLLBACK_COMPLETE) is deleted
-- and created again by this deployment.
ALTER TABLE deployments ADD COLUMN recreate INTEGER NOT NULL DEFAULT 0;
