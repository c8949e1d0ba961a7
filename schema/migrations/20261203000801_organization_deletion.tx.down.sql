CREATE OR REPLACE FUNCTION audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable';
END;
$$;
DROP TABLE organization_operations;
ALTER TABLE organizations DROP CONSTRAINT organizations_deletion_due;
ALTER TABLE organizations DROP COLUMN deleted_at, DROP COLUMN deletion_due_at, DROP COLUMN state;
