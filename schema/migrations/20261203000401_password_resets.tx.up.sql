-- A forgotten password's reset: a single-use secret, stored as its SHA-256,
-- that expires. A newer reset of the same user ends the older ones.
CREATE TABLE password_resets (
    secret_hash bytea PRIMARY KEY CHECK (length(secret_hash) = 32),
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    client_addr text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT ''
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id) WHERE used_at IS NULL;
