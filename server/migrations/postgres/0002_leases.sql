-- Which replica drives an active deployment, and until when its claim holds without being
-- renewed: a replica that dies is replaced by another once the lease runs out.
ALTER TABLE deployments ADD COLUMN owner TEXT;
ALTER TABLE deployments ADD COLUMN lease_until TEXT;
CREATE INDEX deployments_active_leases ON deployments (lease_until) WHERE finished_at IS NULL;
