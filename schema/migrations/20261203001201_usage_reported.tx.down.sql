DROP INDEX IF EXISTS usage_days_unreported_idx;

--bun:split

ALTER TABLE usage_days DROP COLUMN IF EXISTS reported_at;
