-- Keys the API replicas share, created by the first replica that needs one
-- (e.g. "cursor", which signs list cursors so a client cannot forge one).
CREATE TABLE server_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
