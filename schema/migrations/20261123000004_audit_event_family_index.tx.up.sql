-- A prefix filter on audit events (action=member.*) as one index range scan
-- in time order: the action's first segment, its family, before the time.
-- audit_events_org_action_idx orders by the whole action first, so a prefix
-- of rare actions had to sort every match or skip through the time index.
CREATE INDEX audit_events_org_family_idx
    ON audit_events (org_id, split_part(action, '.', 1), occurred_at DESC, id DESC);
