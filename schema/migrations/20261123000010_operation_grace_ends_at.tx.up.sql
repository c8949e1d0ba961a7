-- When a decommission's grace period ends, written as the operation enters
-- it, so members see until when a tenant can be restored without asking
-- Temporal. NULL for every other operation, for a decommission that has
-- not reached its grace period, and for those that ran before this column.
ALTER TABLE operations ADD COLUMN grace_ends_at timestamptz NULL;
