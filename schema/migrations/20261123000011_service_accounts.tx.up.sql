-- Service accounts: automation in an organisation, with a role no higher
-- than its creator's, a scope narrower than the role, and an accountable
-- human. A membership removed clears accountable_member_id, and the
-- account's tokens stop working until an owner or admin takes it over.
CREATE TABLE service_accounts (
    id                    text PRIMARY KEY CHECK (id LIKE 'sa\_%'),
    org_id                text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                  text NOT NULL,
    role                  text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    -- Environments of the tenants it may see and act on; empty: all.
    environments          text[] NOT NULL DEFAULT '{}',
    -- Scopes it is granted (e.g. tenants:create, events:read).
    scopes                text[] NOT NULL DEFAULT '{}',
    accountable_member_id text REFERENCES members (id) ON DELETE SET NULL,
    created_by            text NOT NULL REFERENCES users (id),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE UNIQUE INDEX service_accounts_live_name_key ON service_accounts (org_id, name) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_org_page_idx ON service_accounts (org_id, created_at, id);
CREATE INDEX service_accounts_accountable_idx ON service_accounts (accountable_member_id);

-- Tokens of service accounts: only the SHA-256 of each is stored.
CREATE TABLE service_account_tokens (
    id                 text PRIMARY KEY CHECK (id LIKE 'sat\_%'),
    service_account_id text NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    token_hash         bytea NOT NULL UNIQUE,
    -- The last characters of the token, so an owner can tell tokens apart.
    hint               text NOT NULL,
    created_by         text NOT NULL REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    last_used_at       timestamptz,
    last_used_addr     text NOT NULL DEFAULT ''
);
CREATE INDEX service_account_tokens_account_idx ON service_account_tokens (service_account_id, created_at);

-- Audit events name a service account as an actor, with its name.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
    CHECK (actor_type IN ('member', 'operator', 'system', 'service_account'));
ALTER TABLE audit_events ADD COLUMN actor_name text NOT NULL DEFAULT '';
CREATE INDEX audit_events_org_actor_type_idx ON audit_events (org_id, actor_type, occurred_at DESC, id DESC);

-- An ephemeral tenant's end of life.
ALTER TABLE tenants ADD COLUMN expires_at timestamptz;
