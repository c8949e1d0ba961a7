-- Failed sign-ins per email and per client address, shared by every API
-- replica: repeated failures are slowed, then refused for a while.
CREATE TABLE sign_in_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz
);
