-- A closed day's report to the billing engine: set once Stripe has taken
-- the organisation-day's meter event, so a day is reported once even
-- after Stripe has forgotten its identifier (24 hours at least).
ALTER TABLE usage_days ADD COLUMN reported_at timestamptz;

--bun:split

CREATE INDEX usage_days_unreported_idx ON usage_days (day, org_id) WHERE reported_at IS NULL;
