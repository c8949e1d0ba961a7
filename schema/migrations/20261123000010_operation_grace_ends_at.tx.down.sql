ALTER TABLE operations DROP COLUMN grace_ends_at;
