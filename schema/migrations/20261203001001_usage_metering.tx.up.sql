-- Usage metering (SPEC §10; docs/billing.md, What is metered, and how).
--
-- A tenant's states over time, one row per state it was in: a tenant is
-- billed for the time it is active. The rows are written by a trigger on
-- tenants' state, in the transaction that changes it, so no path that
-- writes tenants.state (the sagas' steps, the organisation's deletion,
-- repairs, a future one) can forget them, and audit events (which
-- retention purges) are not needed to bill. The open row's until is
-- 'infinity'.
CREATE TABLE tenant_state_intervals (
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    org_id      text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    environment text NOT NULL,
    state       text NOT NULL,
    since       timestamptz NOT NULL,
    until       timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (until >= since)
);
CREATE UNIQUE INDEX tenant_state_intervals_open_key ON tenant_state_intervals (tenant_id) WHERE until = 'infinity';
-- The metering reads an organisation's active intervals that end after
-- the range's start.
CREATE INDEX tenant_state_intervals_org_active_idx ON tenant_state_intervals (org_id, until) WHERE state = 'active';

-- The time of a change is clock_timestamp() (taken once the tenant's row
-- is locked, so the changes of one tenant are in order), never before
-- the open interval's start.
CREATE FUNCTION tenant_state_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
            RETURN NULL;
        END IF;
        UPDATE tenant_state_intervals SET until = greatest(since, at)
            WHERE tenant_id = NEW.id AND until = 'infinity'
            RETURNING until INTO at;
        at := coalesce(at, clock_timestamp());
    END IF;
    INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since)
        VALUES (NEW.id, NEW.org_id, NEW.environment, NEW.state, at);
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_state_history AFTER INSERT OR UPDATE OF state ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenant_state_history();

-- The tenants there are now: their state since their last update, the
-- best this history can know of the time before it.
INSERT INTO tenant_state_intervals (tenant_id, org_id, environment, state, since)
    SELECT id, org_id, environment, state, updated_at FROM tenants;

--bun:split

-- An organisation's member count after each change, for its peak of a
-- day: the count before the day (the last row before it) and every row
-- within it. Written by a trigger on members, which every membership's
-- insert and delete goes through (sign-up, invitation, bootstrap,
-- removal, an organisation's deletion). Changes of one organisation
-- take a transaction lock in turn, so each count sees the ones before it
-- (read committed) and the rows are in order. Every path changes
-- members before it writes its audit events, so this lock is taken
-- before the chain head's (store.lockHead), never after: no deadlock.
CREATE TABLE member_counts (
    org_id  text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    members integer NOT NULL CHECK (members >= 0)
);
CREATE INDEX member_counts_org_at_idx ON member_counts (org_id, at);

CREATE FUNCTION member_counts_record() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    org text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        org := NEW.org_id;
    ELSE
        org := OLD.org_id;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('member_counts/' || org, 0));
    IF NOT EXISTS (SELECT 1 FROM organizations WHERE id = org) THEN
        RETURN NULL;
    END IF;
    INSERT INTO member_counts (org_id, at, members)
        VALUES (org, clock_timestamp(), (SELECT count(*) FROM members WHERE org_id = org));
    RETURN NULL;
END $$;
CREATE TRIGGER members_count AFTER INSERT OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION member_counts_record();

INSERT INTO member_counts (org_id, at, members)
    SELECT o.id, now(), (SELECT count(*) FROM members m WHERE m.org_id = o.id) FROM organizations o;

--bun:split

-- API requests an organisation's members and service accounts made, per
-- UTC day, as each API process adds what it counted (api/ratelimit.go).
CREATE TABLE usage_requests (
    org_id   text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    day      date NOT NULL,
    requests bigint NOT NULL CHECK (requests >= 0),
    PRIMARY KEY (org_id, day)
);

-- Operations started per organisation and day.
CREATE INDEX operations_org_started_idx ON operations (org_id, started_at);

--bun:split

-- A closed day's figures, per organisation: written once by the daily
-- close (UsageCloseWorkflow) and never rewritten. tenant_seconds is
-- {environment: seconds active}.
CREATE TABLE usage_days (
    org_id         text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    day            date NOT NULL,
    tenant_seconds jsonb NOT NULL DEFAULT '{}',
    peak_members   integer NOT NULL CHECK (peak_members >= 0),
    api_requests   bigint NOT NULL CHECK (api_requests >= 0),
    operations     integer NOT NULL CHECK (operations >= 0),
    closed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, day)
);

-- The days closed for every organisation, in order: the next close
-- starts after the last.
CREATE TABLE usage_closes (
    day       date PRIMARY KEY,
    orgs      integer NOT NULL,
    closed_at timestamptz NOT NULL DEFAULT now()
);
