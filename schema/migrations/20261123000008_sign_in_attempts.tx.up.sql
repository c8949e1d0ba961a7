-- Sign-in attempts per throttle key (an email, a client address, an email
-- from one client address), shared by every API replica. An attempt takes a
-- slot before its password is checked, in one INSERT … ON CONFLICT that
-- refuses when the key's limit is reached, so concurrent attempts cannot
-- outrun the limit; a right password gives its slot back. It replaces
-- sign_in_failures, which counted failures only after the check.
DROP TABLE sign_in_failures;

CREATE TABLE sign_in_attempts (
    key          text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 400),
    -- attempts taken in the window that began at window_start: failures,
    -- and attempts still being checked
    attempts     integer     NOT NULL CHECK (attempts >= 0),
    window_start timestamptz NOT NULL,
    -- the earliest time of the next attempt, once the key is past its free
    -- attempts (null: no wait)
    next_at      timestamptz,
    -- an email and client address pair that signed in: exempt from the
    -- email's and the address's limits until then
    known_until  timestamptz
);

-- For the sweep of keys whose window is long over.
CREATE INDEX sign_in_attempts_window_start_idx ON sign_in_attempts (window_start);
