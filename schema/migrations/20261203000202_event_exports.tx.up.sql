-- Exports of the audit trail running now, so at most two run at once in an
-- organisation, one per caller, whichever API replica serves them (issue
-- 23, finding 5). A row is a lease: its export renews it with each page it
-- sends and deletes it at its end; the row of a replica that died expires.
CREATE TABLE event_exports (
    id         text PRIMARY KEY CHECK (id LIKE 'exp\_%'),
    org_id     text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- Who runs it: member:<id> or sa:<id>.
    caller     text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX event_exports_org_idx ON event_exports (org_id);
