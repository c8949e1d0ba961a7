ALTER TABLE audit_streams DROP COLUMN inflight_seq;
