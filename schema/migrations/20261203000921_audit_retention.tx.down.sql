DROP TRIGGER audit_events_no_delete ON audit_events;
DROP FUNCTION audit_events_purge_only();
DROP TABLE audit_chain_checkpoints;
DROP FUNCTION audit_chain_checkpoints_prefix_gone();
DROP FUNCTION audit_chain_checkpoints_forward();
ALTER TABLE plans DROP COLUMN audit_retention_days;
