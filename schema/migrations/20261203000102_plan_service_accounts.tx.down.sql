ALTER TABLE plans DROP COLUMN max_service_accounts;
