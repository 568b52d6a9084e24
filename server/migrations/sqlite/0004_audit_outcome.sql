-- A finished deployment's outcome (succeeded, failed, cancelled, refused) as its own column,
-- rather than the first word of the detail. Entries written before it are filled in once; the
-- append-only triggers are lifted for that one statement only.
ALTER TABLE audit ADD COLUMN outcome TEXT;

DROP TRIGGER audit_is_append_only_update;
UPDATE audit
SET outcome = CASE WHEN instr(detail, ':') > 0 THEN substr(detail, 1, instr(detail, ':') - 1) ELSE detail END
WHERE action = 'deploy_finished' AND detail IS NOT NULL;
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
