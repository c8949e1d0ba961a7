-- The environment of the tenant an event is about (NULL for an event about
-- anything else), so a reader limited to environments (a service account)
-- reads one index range per environment instead of every event of its
-- organisation joined to its tenant (issue 23, finding 5). A tenant's
-- environment never changes, so the copy cannot go stale.
ALTER TABLE audit_events ADD COLUMN environment text;

-- Events are immutable (audit_events_no_update): the backfill is the one
-- update they get, with the trigger off only inside this transaction. It
-- rewrites every event about a tenant (docs/deployment.md, Upgrades).
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
UPDATE audit_events AS e SET environment = t.environment
    FROM tenants AS t
    WHERE e.target_type = 'tenant' AND t.id = e.target_id AND t.org_id = e.org_id;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;

-- In the order of a page (the keyset's), so an environment's page is one
-- range scan that stops after the page.
CREATE INDEX audit_events_org_environment_idx
    ON audit_events (org_id, environment, occurred_at DESC, id DESC)
    WHERE environment IS NOT NULL;

-- Whoever writes an event about a tenant (store.InsertEvent, a replica
-- still running the code before this migration during an upgrade, a
-- COPY), the event gets the tenant's environment, unless it names one.
CREATE FUNCTION audit_events_environment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.target_type = 'tenant' AND NEW.environment IS NULL THEN
        SELECT environment INTO NEW.environment FROM tenants
            WHERE id = NEW.target_id AND org_id = NEW.org_id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_events_environment BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_environment();
