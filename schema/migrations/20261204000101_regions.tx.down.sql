ALTER TABLE service_accounts DROP COLUMN regions;

--bun:split

ALTER TABLE organizations DROP COLUMN default_region;

--bun:split

ALTER TABLE tenants DROP COLUMN region;
