DROP INDEX audit_chains_updated_idx;
ALTER TABLE audit_chains DROP COLUMN updated_at;
DROP TABLE audit_stream_deliveries;
DROP TABLE audit_streams;
