-- A message's body without its secrets, written with the message by the
-- code that knows what is secret in it. Once the message is sent, or given
-- up after its last attempt, it replaces the body: an invitation's secret
-- is not kept readable in the database after its mail is done. A message
-- queued without one keeps an empty body once done.
ALTER TABLE outbox ADD COLUMN body_redacted text NOT NULL DEFAULT '';

-- Messages queued before: invitation secrets are cpi_ and 43 base64url
-- characters.
UPDATE outbox SET body_redacted = regexp_replace(body, 'cpi_[A-Za-z0-9_-]{43}', 'cpi_(redacted)', 'g');
UPDATE outbox SET body = body_redacted WHERE sent_at IS NOT NULL OR attempts >= 10;
