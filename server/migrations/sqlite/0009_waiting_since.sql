-- Since when a deployment has been waiting for AWS (throttling, retries, an unreachable
-- endpoint): the page says how long, not only why.
ALTER TABLE deployments ADD COLUMN waiting_since TEXT;
