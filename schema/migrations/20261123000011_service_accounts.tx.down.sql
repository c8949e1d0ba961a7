ALTER TABLE tenants DROP COLUMN expires_at;
DROP INDEX audit_events_org_actor_type_idx;
ALTER TABLE audit_events DROP COLUMN actor_name;
DELETE FROM audit_events WHERE actor_type = 'service_account';
ALTER TABLE audit_events DROP CONSTRAINT audit_events_actor_type_check;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_actor_type_check
    CHECK (actor_type IN ('member', 'operator', 'system'));
DROP TABLE service_account_tokens;
DROP TABLE service_accounts;
