-- An organisation's deletion (SPEC §8): its state, when its grace period
-- ends, its own operations (deletion, restore), and the one update audit
-- events may get: the erasure's pseudonyms in place of names and emails.

ALTER TABLE organizations
    ADD COLUMN state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deleting', 'deleted')),
    ADD COLUMN deletion_due_at timestamptz,
    ADD COLUMN deleted_at timestamptz,
    ADD CONSTRAINT organizations_deletion_due CHECK ((state = 'deleting') = (deletion_due_at IS NOT NULL));

-- An organisation's operations. requested_by names a user without a
-- reference: the erasure keeps the row and the id, never the person.
-- (workflow_id, update_id) is the request across its retries.
CREATE TABLE organization_operations (
    id           text PRIMARY KEY CHECK (id LIKE 'op\_%'),
    org_id       text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('deletion', 'restore')),
    status       text NOT NULL CHECK (status IN ('running', 'stuck', 'succeeded', 'cancelled')),
    requested_by text NOT NULL DEFAULT '',
    request_id   text NOT NULL DEFAULT '',
    workflow_id  text NOT NULL,
    update_id    text NOT NULL,
    due_at       timestamptz,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    UNIQUE (workflow_id, update_id)
);
CREATE INDEX organization_operations_org_page_idx ON organization_operations (org_id, started_at, id);
-- One deletion runs per organisation at a time.
CREATE UNIQUE INDEX organization_operations_one_running_key ON organization_operations (org_id)
    WHERE status IN ('running', 'stuck');

-- Audit events stay immutable, except for the erasure of a deleted
-- organisation's personal data: a transaction that says so
-- (SET LOCAL controlplane.pseudonymise = 'on') may replace the actor's
-- email and name, on_behalf_of and data, and nothing else.
CREATE OR REPLACE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('controlplane.pseudonymise', true) = 'on'
       AND NEW.id = OLD.id AND NEW.org_id = OLD.org_id AND NEW.action = OLD.action
       AND NEW.actor_type = OLD.actor_type AND NEW.actor_id = OLD.actor_id
       AND NEW.target_type = OLD.target_type AND NEW.target_id = OLD.target_id
       AND NEW.request_id = OLD.request_id AND NEW.workflow_id = OLD.workflow_id
       AND NEW.dedup_key IS NOT DISTINCT FROM OLD.dedup_key AND NEW.occurred_at = OLD.occurred_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are immutable';
END;
$$;
