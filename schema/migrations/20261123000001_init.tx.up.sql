-- The control plane's tables. Every id is a prefixed ULID, every
-- time a timestamptz in UTC.

CREATE TABLE plans (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name                text NOT NULL,
    max_tenants         integer NOT NULL CHECK (max_tenants >= 0),
    max_members         integer NOT NULL CHECK (max_members >= 0),
    requests_per_minute integer NOT NULL CHECK (requests_per_minute > 0),
    created_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES
    ('free',       'Free',        2,    5,   600),
    ('team',       'Team',       10,   50,  3000),
    ('enterprise', 'Enterprise', 100, 1000, 30000);

--bun:split

CREATE TABLE organizations (
    id         text PRIMARY KEY CHECK (id LIKE 'org\_%'),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    plan_id    text NOT NULL REFERENCES plans (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            text PRIMARY KEY CHECK (id LIKE 'usr\_%'),
    email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE members (
    id         text PRIMARY KEY CHECK (id LIKE 'mem\_%'),
    org_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, user_id)
);
CREATE INDEX members_user_idx ON members (user_id);
CREATE INDEX members_org_page_idx ON members (org_id, created_at, id);

-- Sessions are bearer tokens; only a SHA-256 of the token is stored.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    client_addr text NOT NULL DEFAULT '',
    user_agent  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE invitations (
    id          text PRIMARY KEY CHECK (id LIKE 'inv\_%'),
    org_id      text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(email)),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'developer', 'viewer')),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
    invited_by  text NOT NULL REFERENCES users (id),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX invitations_pending_email_key ON invitations (org_id, email) WHERE status = 'pending';
CREATE INDEX invitations_org_page_idx ON invitations (org_id, created_at, id);

-- Outgoing mail, written in the transaction of the change that causes it and
-- delivered by a sender afterwards.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL;

--bun:split

CREATE TABLE tenants (
    id                   text PRIMARY KEY CHECK (id LIKE 'tnt\_%'),
    org_id               text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                 text NOT NULL CHECK (name ~ '^[a-z0-9]([a-z0-9-]{1,30}[a-z0-9])$'),
    environment          text NOT NULL,
    state                text NOT NULL CHECK (state IN ('provisioning', 'active', 'suspended', 'decommissioning', 'decommissioned', 'failed')),
    hostname             text NOT NULL,
    workflow_id          text NOT NULL UNIQUE,
    current_operation_id text,
    created_by           text NOT NULL REFERENCES users (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- A name is unique among the live tenants of an organisation; a failed or
-- decommissioned tenant frees it.
CREATE UNIQUE INDEX tenants_live_name_key ON tenants (org_id, name) WHERE state NOT IN ('failed', 'decommissioned');
CREATE INDEX tenants_org_page_idx ON tenants (org_id, created_at, id);
CREATE INDEX tenants_org_state_page_idx ON tenants (org_id, state, created_at, id);

CREATE TABLE operations (
    id           text PRIMARY KEY CHECK (id LIKE 'op\_%'),
    org_id       text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('provision', 'suspend', 'resume', 'decommission', 'restore')),
    status       text NOT NULL CHECK (status IN ('running', 'stuck', 'succeeded', 'failed', 'cancelled', 'compensated')),
    steps        jsonb NOT NULL DEFAULT '[]',
    requested_by text NOT NULL REFERENCES users (id),
    request_id   text NOT NULL,
    workflow_id  text NOT NULL,
    update_id    text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);
CREATE INDEX operations_tenant_page_idx ON operations (tenant_id, started_at, id);
-- One operation runs per tenant at a time.
CREATE UNIQUE INDEX operations_one_running_key ON operations (tenant_id) WHERE status IN ('running', 'stuck');

--bun:split

-- The audit trail. Rows are never updated or deleted; dedup_key makes a
-- retried writer (an activity run twice) insert its event once.
CREATE TABLE audit_events (
    id           text PRIMARY KEY CHECK (id LIKE 'evt\_%'),
    org_id       text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    action       text NOT NULL,
    actor_type   text NOT NULL CHECK (actor_type IN ('member', 'operator', 'system')),
    actor_id     text NOT NULL DEFAULT '',
    actor_email  text NOT NULL DEFAULT '',
    on_behalf_of jsonb,
    target_type  text NOT NULL DEFAULT '',
    target_id    text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    workflow_id  text NOT NULL DEFAULT '',
    client_addr  text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT '',
    data         jsonb,
    dedup_key    text UNIQUE,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_org_page_idx ON audit_events (org_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_org_action_idx ON audit_events (org_id, action text_pattern_ops, occurred_at DESC, id DESC);
CREATE INDEX audit_events_org_actor_idx ON audit_events (org_id, actor_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_org_target_idx ON audit_events (org_id, target_id, occurred_at DESC, id DESC);

CREATE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();

-- Responses of mutating requests, replayed for a retry with the same key.
CREATE TABLE idempotency_records (
    scope        text NOT NULL,
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,
    state        text NOT NULL DEFAULT 'in_progress' CHECK (state IN ('in_progress', 'done')),
    status       integer NOT NULL DEFAULT 0,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_records_expiry_idx ON idempotency_records (expires_at);
