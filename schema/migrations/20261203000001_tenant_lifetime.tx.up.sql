-- The lifetime an ephemeral tenant was requested with, in seconds, so a
-- retry of its creation with the same Idempotency-Key and another
-- expires_in (or none) is told the key was used for another request.
ALTER TABLE tenants ADD COLUMN lifetime_seconds bigint CHECK (lifetime_seconds > 0);
