ALTER TABLE audit_events DROP COLUMN actor_token_id;
DROP INDEX service_account_tokens_minted_by_idx;
ALTER TABLE service_account_tokens DROP COLUMN revoked_reason;
ALTER TABLE service_account_tokens DROP COLUMN minted_by;
