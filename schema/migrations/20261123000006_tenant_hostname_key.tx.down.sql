DROP INDEX tenants_live_hostname_key;
