-- Regions: where a tenant's data plane is. Empty is the installation's own
-- data plane (every tenant created before regions, and every tenant of an
-- installation without CP_REGIONS). A tenant's region never changes.
ALTER TABLE tenants ADD COLUMN region text NOT NULL DEFAULT ''
    CHECK (region ~ '^([a-z][a-z0-9-]{0,18}[a-z0-9]|[a-z]?)$');

--bun:split

-- An organisation's default region for new tenants (NULL: the
-- installation's first region).
ALTER TABLE organizations ADD COLUMN default_region text
    CHECK (default_region ~ '^[a-z][a-z0-9-]{0,18}[a-z0-9]$|^[a-z]$');

--bun:split

-- A service account may be limited to tenants of some regions, as to some
-- environments (empty: every region).
ALTER TABLE service_accounts ADD COLUMN regions text[] NOT NULL DEFAULT '{}';
