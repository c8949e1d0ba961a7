ALTER TABLE organizations DROP COLUMN require_mfa;
ALTER TABLE sessions DROP COLUMN authenticated_at;
DROP TABLE auth_challenges;
DROP TABLE webauthn_credentials;
DROP TABLE recovery_codes;
DROP TABLE user_totp;
