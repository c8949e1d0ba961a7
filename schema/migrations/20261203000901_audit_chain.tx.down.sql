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
DROP TABLE audit_chains;
DROP INDEX audit_events_unchained_idx;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_org_seq_key, DROP CONSTRAINT audit_events_hash,
    DROP CONSTRAINT audit_events_seq, DROP CONSTRAINT audit_events_chained, DROP COLUMN hash, DROP COLUMN seq;
