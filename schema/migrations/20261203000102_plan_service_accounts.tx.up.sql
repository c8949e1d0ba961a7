-- How many service accounts an organisation of the plan may have (those
-- not deleted): each is a principal with a share of the budget and tokens
-- to keep track of.
ALTER TABLE plans ADD COLUMN max_service_accounts integer NOT NULL DEFAULT 10 CHECK (max_service_accounts >= 0);
UPDATE plans SET max_service_accounts = 3 WHERE id = 'free';
UPDATE plans SET max_service_accounts = 20 WHERE id = 'team';
UPDATE plans SET max_service_accounts = 100 WHERE id = 'enterprise';
