-- A session a person can see and end: an id that is not its token's hash
-- (which must never leave the server), and when it was last used.
ALTER TABLE sessions ADD COLUMN id text;
UPDATE sessions SET id = 'ses_' || md5(token_hash::text) WHERE id IS NULL;
ALTER TABLE sessions ALTER COLUMN id SET NOT NULL;
ALTER TABLE sessions ADD CONSTRAINT sessions_id_check CHECK (id LIKE 'ses\_%');
CREATE UNIQUE INDEX sessions_id_key ON sessions (id);
ALTER TABLE sessions ADD COLUMN last_used_at timestamptz;
UPDATE sessions SET last_used_at = created_at WHERE last_used_at IS NULL;
ALTER TABLE sessions ALTER COLUMN last_used_at SET NOT NULL;
ALTER TABLE sessions ALTER COLUMN last_used_at SET DEFAULT now();
