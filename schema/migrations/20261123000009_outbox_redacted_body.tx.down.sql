-- Redacted bodies stay redacted.
ALTER TABLE outbox DROP COLUMN body_redacted;
