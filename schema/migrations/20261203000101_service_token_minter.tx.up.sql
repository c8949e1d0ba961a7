-- Who minted each service-account token: the membership, not the user, so
-- a member removed and invited again does not bring back what they minted.
-- No foreign key: a member's row is deleted when they leave or are
-- removed, and the token still says who minted it (created_by keeps the
-- user). A token works only while its minter may mint it: a member whose
-- role has service_accounts.manage and is at least the account's role.
ALTER TABLE service_account_tokens ADD COLUMN minted_by text;
-- Why a token was revoked: revoked (by an owner or admin), account_deleted,
-- minter_removed, minter_left, minter_demoted, account_role_raised,
-- taken_over, minter_gone (by this migration).
ALTER TABLE service_account_tokens ADD COLUMN revoked_reason text NOT NULL DEFAULT '';

-- Existing tokens were minted by their creator's membership in the
-- account's organisation, when the creator is still a member there.
UPDATE service_account_tokens t SET minted_by = m.id
FROM service_accounts a JOIN members m ON m.org_id = a.org_id
WHERE a.id = t.service_account_id AND m.user_id = t.created_by;

UPDATE service_account_tokens t SET revoked_reason = CASE WHEN a.deleted_at IS NULL THEN 'revoked' ELSE 'account_deleted' END
FROM service_accounts a
WHERE a.id = t.service_account_id AND t.revoked_at IS NOT NULL;

-- A valid token whose minter is gone, or may no longer mint it, stops
-- now: it is what the rule above refuses from here on. (Owners and admins
-- have service_accounts.manage; an admin may not mint on an owner's
-- account.)
UPDATE service_account_tokens t SET revoked_at = now(), revoked_reason = 'minter_gone'
FROM service_accounts a
WHERE a.id = t.service_account_id AND t.revoked_at IS NULL AND t.expires_at > now()
  AND NOT EXISTS (SELECT 1 FROM members m
                  WHERE m.id = t.minted_by AND m.org_id = a.org_id
                    AND (m.role = 'owner' OR (m.role = 'admin' AND a.role <> 'owner')));

CREATE INDEX service_account_tokens_minted_by_idx ON service_account_tokens (minted_by) WHERE revoked_at IS NULL;

-- Audit events name the token a service account's request used.
ALTER TABLE audit_events ADD COLUMN actor_token_id text NOT NULL DEFAULT '';
