-- A hostname names one live tenant on the whole platform. Hostnames are
-- <tenant>-<org-slug>.<base>, which two organisations can both produce
-- (tenant prod-x of org acme, tenant prod of org x-acme); the second is
-- refused, here and in the reservation that checks it first.
CREATE UNIQUE INDEX tenants_live_hostname_key ON tenants (hostname) WHERE state NOT IN ('failed', 'decommissioned');
