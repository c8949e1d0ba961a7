-- Audit retention (SPEC §9): each plan keeps an organisation's events
-- for audit_retention_days (free 30, team 365, enterprise 2,555). A plan
-- this migration does not name (one an operator added) keeps them 2,555
-- days: a purge cannot be undone, so what is not said is kept longest.
ALTER TABLE plans ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 2555
    CHECK (audit_retention_days BETWEEN 1 AND 36500);
UPDATE plans SET audit_retention_days = 30 WHERE id = 'free';
UPDATE plans SET audit_retention_days = 365 WHERE id = 'team';
UPDATE plans SET audit_retention_days = 2555 WHERE id = 'enterprise';

--bun:split

-- What retention purged of each organisation's chain: a prefix, up to
-- and including the event of seq, whose hash and time are kept here. The
-- chain goes on from it as from a genesis (the next event's hash links
-- to this hash), so what is left verifies without what was purged, and
-- the signed head names the checkpoint (intelliauth-audit-chain/v2).
-- store.PurgeAuditTrail moves it, in the transaction that deletes the
-- events it summarises.
CREATE TABLE audit_chain_checkpoints (
    org_id      text PRIMARY KEY REFERENCES organizations (id),
    seq         bigint NOT NULL CHECK (seq >= 1),
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    -- When the last purged event occurred.
    occurred_at timestamptz NOT NULL,
    purged_at   timestamptz NOT NULL DEFAULT now()
);

--bun:split

-- A checkpoint is written by a purge of its own organisation only
-- (SET LOCAL controlplane.purge = '<org_id>'), never moves back, is
-- never removed, and is an event of the chain: its seq, hash and time
-- are those of an event still there when it is written (the purge
-- writes it, then deletes the events up to it).
CREATE FUNCTION audit_chain_checkpoints_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit chain checkpoints are never removed';
    END IF;
    IF current_setting('controlplane.purge', true) IS DISTINCT FROM NEW.org_id THEN
        RAISE EXCEPTION 'an audit chain checkpoint is moved by its organisation''s purge only';
    END IF;
    IF TG_OP = 'UPDATE' AND (NEW.org_id <> OLD.org_id OR NEW.seq <= OLD.seq) THEN
        RAISE EXCEPTION 'an audit chain checkpoint only moves forward';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = NEW.org_id AND e.seq = NEW.seq
                   AND e.hash = NEW.hash AND e.occurred_at = NEW.occurred_at) THEN
        RAISE EXCEPTION 'an audit chain checkpoint is an event of the chain';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_chain_checkpoints_forward BEFORE INSERT OR UPDATE OR DELETE ON audit_chain_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_chain_checkpoints_forward();

-- At commit, no event is left at or before a checkpoint: what it moved
-- over (from where it was) is gone, so a checkpoint summarises exactly a
-- prefix of the chain.
CREATE FUNCTION audit_chain_checkpoints_prefix_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = NEW.org_id
               AND e.seq > (CASE WHEN TG_OP = 'UPDATE' THEN OLD.seq ELSE 0 END) AND e.seq <= NEW.seq) THEN
        RAISE EXCEPTION 'events at or before the audit chain checkpoint of % (seq %) are left', NEW.org_id, NEW.seq;
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER audit_chain_checkpoints_prefix_gone AFTER INSERT OR UPDATE ON audit_chain_checkpoints
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit_chain_checkpoints_prefix_gone();

--bun:split

-- Events are deleted by retention only, and only a prefix of their
-- chain: in a transaction that purges their organisation
-- (SET LOCAL controlplane.purge = '<org_id>'), an event chained at or
-- before the organisation's checkpoint, which that transaction moved
-- first. Nothing else deletes an event: not another organisation's
-- purge, not an unchained event, not one after the checkpoint, and not
-- the removal of an organisation's row (organisations are kept,
-- deleted, with their trail).
CREATE FUNCTION audit_events_purge_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('controlplane.purge', true) = OLD.org_id AND OLD.seq IS NOT NULL
       AND OLD.seq <= (SELECT c.seq FROM audit_chain_checkpoints c WHERE c.org_id = OLD.org_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are deleted by retention only, up to their chain''s checkpoint';
END;
$$;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_purge_only();
