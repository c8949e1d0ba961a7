ALTER TABLE sessions DROP COLUMN last_used_at;
DROP INDEX sessions_id_key;
ALTER TABLE sessions DROP CONSTRAINT sessions_id_check;
ALTER TABLE sessions DROP COLUMN id;
