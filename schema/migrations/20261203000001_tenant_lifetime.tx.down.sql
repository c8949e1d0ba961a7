ALTER TABLE tenants DROP COLUMN lifetime_seconds;
