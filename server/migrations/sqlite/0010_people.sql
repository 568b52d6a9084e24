-- Four eyes compare people, not names (audit #31). A person is the identity provider's stable
-- subject (`sub`), not the free-to-change `preferred_username`; a token belongs to the person who
-- made it, so a token's free-chosen name never stands for anyone.
ALTER TABLE sessions ADD COLUMN subject TEXT;
ALTER TABLE tokens ADD COLUMN person TEXT;
ALTER TABLE tokens ADD COLUMN person_name TEXT;
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
-- Who asked for a deployment, as a person (id and login name), whatever token or session they used.
ALTER TABLE deployments ADD COLUMN requester TEXT;
ALTER TABLE deployments ADD COLUMN requester_name TEXT;
