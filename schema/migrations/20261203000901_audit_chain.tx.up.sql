-- Tamper evidence for the audit trail (SPEC §9): each organisation's
-- events form a hash chain. An event's seq is its place in its
-- organisation's chain (1, 2, 3, …, no gaps), its hash
-- SHA-256(the previous event's hash ‖ its canonical form), computed by
-- store.InsertEvent (the canonical form is RFC 8785 JSON, which SQL does
-- not write). Events written before this migration, and those a replica
-- of the previous release writes during the rolling restart, have no seq
-- yet: `controlplane migrate up` chains them right after this migration,
-- and the next event of their organisation chains any left before itself.
ALTER TABLE audit_events
    ADD COLUMN seq bigint,
    ADD COLUMN hash bytea,
    ADD CONSTRAINT audit_events_chained CHECK ((seq IS NULL) = (hash IS NULL)),
    ADD CONSTRAINT audit_events_seq CHECK (seq >= 1),
    ADD CONSTRAINT audit_events_hash CHECK (octet_length(hash) = 32),
    -- An organisation's events in chain order: what a reader of the
    -- chain (verify, a stream after its cursor) reads, one range scan.
    ADD CONSTRAINT audit_events_org_seq_key UNIQUE (org_id, seq);

-- The events still to chain, oldest first, per organisation: empty once
-- the backlog is chained, so the check for one on each write is a probe
-- of an empty index.
CREATE INDEX audit_events_unchained_idx ON audit_events (org_id, occurred_at, id) WHERE seq IS NULL;

--bun:split

-- Each organisation's chain: how many events it has and the hash of the
-- last (32 zero bytes, the genesis, while it has none). Its row is the
-- lock that orders an organisation's events: a writer locks it, takes
-- the next seq and hash, and holds it until its transaction commits, so
-- seq order is commit order within an organisation.
CREATE TABLE audit_chains (
    org_id text PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    length bigint NOT NULL DEFAULT 0 CHECK (length >= 0),
    head   bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex') CHECK (octet_length(head) = 32)
);

--bun:split

-- Events stay immutable, with two exceptions. An event written before
-- its organisation's chain is chained once: seq and hash set where they
-- were NULL, nothing else changed. And the erasure of a deleted
-- organisation's personal data (SET LOCAL controlplane.pseudonymise =
-- 'on') may replace the actor's email and name, on_behalf_of and data,
-- and the hashes its rewrite changes, never a seq.
CREATE OR REPLACE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND to_jsonb(NEW) - 'seq' - 'hash' = to_jsonb(OLD) - 'seq' - 'hash' THEN
        RETURN NEW;
    END IF;
    IF current_setting('controlplane.pseudonymise', true) = 'on'
       AND NEW.id = OLD.id AND NEW.org_id = OLD.org_id AND NEW.action = OLD.action
       AND NEW.actor_type = OLD.actor_type AND NEW.actor_id = OLD.actor_id
       AND NEW.target_type = OLD.target_type AND NEW.target_id = OLD.target_id
       AND NEW.request_id = OLD.request_id AND NEW.workflow_id = OLD.workflow_id
       AND NEW.dedup_key IS NOT DISTINCT FROM OLD.dedup_key AND NEW.occurred_at = OLD.occurred_at
       AND NEW.seq IS NOT DISTINCT FROM OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are immutable';
END;
$$;
