-- The last seq of the batch a stream's delivery is sending, written before
-- it is sent and cleared when the cursor moves past it: whatever ends
-- that attempt (a refusal, a timeout, a worker killed mid-request), the
-- next attempt sends the same batch again, so its Idempotency-Key repeats
-- and a receiver that took it drops it. A replay clears it.
ALTER TABLE audit_streams ADD COLUMN inflight_seq bigint CHECK (inflight_seq > cursor_seq);
