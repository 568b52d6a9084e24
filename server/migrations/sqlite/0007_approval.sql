-- A protected environment's approval: set when the deployment waits (whether another person must
-- approve), then the decision, who made it and when — written by the approve/discard request,
-- read by whichever replica drives the deployment, kept across restarts.
ALTER TABLE deployments ADD COLUMN approval_by_another INTEGER;
ALTER TABLE deployments ADD COLUMN approval_decision TEXT;
ALTER TABLE deployments ADD COLUMN approval_by TEXT;
ALTER TABLE deployments ADD COLUMN approval_at TEXT;
