-- The moment of execution, recorded only while no pause covers the environment (one statement),
-- and once the execute call was answered; a cancel request kept across restarts.
ALTER TABLE deployments ADD COLUMN execution_committed_at TEXT;
ALTER TABLE deployments ADD COLUMN executed_at TEXT;
ALTER TABLE deployments ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE deployments ADD COLUMN cancel_confirm_delete INTEGER NOT NULL DEFAULT 0;
-- Why the deployment is waiting for AWS right now (NULL when it is not).
ALTER TABLE deployments ADD COLUMN waiting_reason TEXT;
-- The parameters the deployed build's template declares NoEcho (JSON array): never shown for
-- this stack, whatever its current template or an emulator says.
ALTER TABLE deployments ADD COLUMN no_echo TEXT;
