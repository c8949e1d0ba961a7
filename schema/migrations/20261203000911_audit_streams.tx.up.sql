-- Audit streams (SPEC §9): an organisation's audit events delivered, in
-- order and at least once, to a webhook, a Splunk HTTP Event Collector or
-- Datadog's Logs API, each stream by one long-lived workflow
-- (workflows/stream.go) from its cursor.
--
-- cursor_seq is the stream's place in its organisation's audit chain
-- (audit_events.seq): every event up to it was delivered or did not match
-- the stream's actions filter. It only moves by a compare-and-set on the
-- value its writer read (a delivery moves it forward; a replay moves it
-- back, and wins over a delivery in flight). cursor_event_id is the last
-- event delivered. Retention must not purge an organisation's events past
-- the lowest cursor_seq of its streams that are active or failing
-- (audit_streams_floor_idx), within its bound.
--
-- The signing secret (https streams) and the credential (a Splunk HEC
-- token, a Datadog API key) are sealed under the key ring, each bound to
-- its stream and column (store.StreamSealContext), and never shown again;
-- a deleted stream's row keeps neither (an erased organisation's streams
-- are deleted with their rows).
CREATE TABLE audit_streams (
    id                text PRIMARY KEY CHECK (id LIKE 'ast\_%'),
    org_id            text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    kind              text NOT NULL CHECK (kind IN ('https', 'splunk_hec', 'datadog')),
    endpoint          text NOT NULL CHECK (octet_length(endpoint) BETWEEN 1 AND 2048),
    -- The body of an https stream; the other kinds have their own.
    format            text CHECK ((kind = 'https') = (format IS NOT NULL) AND format IN ('ndjson', 'cloudevents')),
    -- Exact actions and families (tenant.*); empty: every event.
    actions           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(actions) <= 50),
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'failing', 'suspended')),
    cursor_seq        bigint NOT NULL DEFAULT 0 CHECK (cursor_seq >= 0),
    cursor_event_id   text,
    -- Set by the first failed delivery of a run of failures, cleared by
    -- the next success or a resume: the stream is suspended once it is
    -- older than CP_STREAM_SUSPEND_AFTER.
    failing_since     timestamptz,
    last_error        text NOT NULL DEFAULT '' CHECK (char_length(last_error) <= 500),
    last_error_at     timestamptz,
    last_delivery_at  timestamptz,
    -- A deleted stream keeps neither.
    secret_sealed     bytea CHECK (deleted_at IS NOT NULL OR (kind = 'https') = (secret_sealed IS NOT NULL)),
    credential_sealed bytea CHECK (deleted_at IS NOT NULL OR (kind = 'https') = (credential_sealed IS NULL)),
    -- Bumped by every change a person makes (PATCH, replay): a delivery
    -- that read another version stops after its batch and reads the stream
    -- again.
    version           bigint NOT NULL DEFAULT 1,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX audit_streams_org_idx ON audit_streams (org_id, created_at, id) WHERE deleted_at IS NULL;
-- The lowest cursor of an organisation's streams that still deliver.
CREATE INDEX audit_streams_floor_idx ON audit_streams (org_id, cursor_seq)
    WHERE deleted_at IS NULL AND status IN ('active', 'failing');

--bun:split

-- The delivery log: one row per attempt at a batch (and per test event),
-- newest first per stream; each stream keeps its last 1,000 rows of the
-- last 7 days (store.PruneStreamDeliveries).
CREATE TABLE audit_stream_deliveries (
    id              text PRIMARY KEY CHECK (id LIKE 'asd\_%'),
    stream_id       text NOT NULL REFERENCES audit_streams (id) ON DELETE CASCADE,
    attempted_at    timestamptz NOT NULL DEFAULT now(),
    -- delivered, failed, or test (the test button's event).
    outcome         text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'test')),
    first_event_id  text NOT NULL,
    last_event_id   text NOT NULL,
    first_seq       bigint NOT NULL DEFAULT 0,
    last_seq        bigint NOT NULL DEFAULT 0,
    event_count     integer NOT NULL CHECK (event_count >= 1),
    bytes           integer NOT NULL DEFAULT 0,
    idempotency_key text NOT NULL,
    -- The receiver's HTTP status; 0 when none came.
    status          integer NOT NULL DEFAULT 0,
    latency_ms      integer NOT NULL DEFAULT 0,
    -- Which attempt at this batch: 1, then 2, … while it fails.
    attempt         integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    error           text NOT NULL DEFAULT '' CHECK (char_length(error) <= 500)
);
CREATE INDEX audit_stream_deliveries_stream_idx ON audit_stream_deliveries (stream_id, attempted_at DESC, id DESC);

--bun:split

-- When each chain's head last moved (clock_timestamp() of the write, not
-- its transaction's start): the workers' notifier reads the heads that
-- moved since its last look, one range of this index a second for the
-- whole installation, and wakes the streams that are behind.
ALTER TABLE audit_chains ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX audit_chains_updated_idx ON audit_chains (updated_at);
