-- Which deployer process drives an active deployment, and until when its claim holds without
-- being renewed (several replicas on one database; one SQLite process claims everything).
ALTER TABLE deployments ADD COLUMN owner TEXT;
ALTER TABLE deployments ADD COLUMN lease_until TEXT;
