DROP TRIGGER audit_events_environment ON audit_events;
DROP FUNCTION audit_events_environment();
DROP INDEX audit_events_org_environment_idx;
ALTER TABLE audit_events DROP COLUMN environment;
