-- A person's second factors (TOTP, recovery codes, passkeys), the
-- short-lived challenges of two-step sign-in and of passkey ceremonies,
-- when a session's person last proved who they are (recent
-- authentication), and an organisation's require-MFA policy.

-- A TOTP secret, sealed under the key ring's current key-encryption key
-- (as tenants' signing keys are). Pending until a right code confirms it.
-- last_step is the last time step a code was accepted for: a code is
-- accepted once (no replay within its window).
CREATE TABLE user_totp (
    user_id       text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    confirmed_at  timestamptz,
    last_step     bigint NOT NULL DEFAULT 0
);

-- Recovery codes, stored as their SHA-256 (80 random bits each: nothing
-- to brute-force), each good once. A new set replaces the old.
CREATE TABLE recovery_codes (
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL CHECK (length(code_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Passkeys (WebAuthn credentials): the public key and what the
-- authenticator reported, as go-webauthn's Credential.
CREATE TABLE webauthn_credentials (
    id            text PRIMARY KEY CHECK (id LIKE 'pk\_%'),
    user_id       text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea NOT NULL UNIQUE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    credential    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);
CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials (user_id);

-- A challenge: a single-use secret, stored as its SHA-256, that expires
-- (5 minutes). purpose says what it is for: the second step of a sign-in
-- (user known), a passkey sign-in with no password (user_id null until
-- the assertion names one), a passkey registration. webauthn holds the
-- ceremony's session data (its random challenge) when there is one.
CREATE TABLE auth_challenges (
    secret_hash bytea PRIMARY KEY CHECK (length(secret_hash) = 32),
    purpose     text NOT NULL CHECK (purpose IN ('sign_in', 'passkey_sign_in', 'passkey_registration')),
    user_id     text REFERENCES users (id) ON DELETE CASCADE,
    webauthn    jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    client_addr text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT ''
);
CREATE INDEX auth_challenges_expires_idx ON auth_challenges (expires_at);

-- When the session's person last proved who they are: its sign-in, or
-- a later POST /auth/reauthenticate.
ALTER TABLE sessions ADD COLUMN authenticated_at timestamptz;
UPDATE sessions SET authenticated_at = created_at WHERE authenticated_at IS NULL;
ALTER TABLE sessions ALTER COLUMN authenticated_at SET NOT NULL;
ALTER TABLE sessions ALTER COLUMN authenticated_at SET DEFAULT now();

ALTER TABLE organizations ADD COLUMN require_mfa boolean NOT NULL DEFAULT false;
