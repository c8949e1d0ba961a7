-- A sign-up waiting for its email to be verified: nothing else exists
-- until then. The secret is stored as its SHA-256 and expires; the
-- password is kept only as its argon2id hash. A row is deleted when it is
-- verified or refused (single use) and once it has expired. Sign-ups of
-- one email do not replace each other, and the slug is not reserved: the
-- first verification to create the account, or the slug, wins.
CREATE TABLE signups (
    secret_hash   bytea PRIMARY KEY CHECK (length(secret_hash) = 32),
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    password_hash text NOT NULL,
    org_name      text NOT NULL CHECK (length(org_name) BETWEEN 1 AND 100),
    org_slug      text NOT NULL CHECK (org_slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    client_addr   text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX signups_expires_idx ON signups (expires_at);
