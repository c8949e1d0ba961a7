-- Billing on Stripe (SPEC §10): an organisation's Stripe customer and
-- subscription state, and the Stripe events received, each applied once.

CREATE TABLE billing_accounts (
    org_id             text PRIMARY KEY REFERENCES organizations (id) ON DELETE CASCADE,
    -- The organisation's Stripe customer, made on first need.
    stripe_customer_id text UNIQUE,
    -- The subscription the events of which move the organisation's state.
    subscription_id    text,
    status             text NOT NULL DEFAULT 'none' CHECK (status IN ('none', 'active', 'past_due', 'canceled')),
    past_due_since     timestamptz,
    -- When a past_due organisation moves to the free plan unless paid.
    grace_ends_at      timestamptz,
    -- Stripe's created of the last event applied to the state: an older
    -- one delivered later is superseded, never applied.
    state_event_at     timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'past_due') = (grace_ends_at IS NOT NULL))
);

--bun:split

-- A Stripe event as received (its facts, not its payload: no personal
-- data of the customer's at rest), unique on Stripe's id.
CREATE TABLE billing_events (
    stripe_event_id text PRIMARY KEY CHECK (length(stripe_event_id) BETWEEN 1 AND 255),
    org_id          text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type            text NOT NULL,
    stripe_created  timestamptz NOT NULL,
    customer_id     text NOT NULL DEFAULT '',
    subscription_id text NOT NULL DEFAULT '',
    invoice_id      text NOT NULL DEFAULT '',
    plan_id         text NOT NULL DEFAULT '',
    paid            boolean NOT NULL DEFAULT false,
    received_at     timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    outcome         text CHECK (outcome IN ('applied', 'superseded', 'ignored')),
    CHECK ((applied_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX billing_events_pending_idx ON billing_events (org_id, received_at) WHERE applied_at IS NULL;
