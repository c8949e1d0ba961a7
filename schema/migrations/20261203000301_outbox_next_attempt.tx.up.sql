-- When a sender may next take a message. A sender claims a batch by moving
-- it past the time it needs to send them (its lease) and commits before it
-- talks to the relay: no row stays locked while a relay is slow. A failed
-- delivery moves it to the retry's back-off; a sender stopped mid-send
-- clears it; a sender that dies leaves it to expire, and another sender
-- takes the message then. NULL: now.
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
