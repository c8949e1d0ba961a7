-- API rate-limit budgets (shared by every API replica). One row per
-- scope (an organisation, a user, a client address) and minute window; an
-- API process reserves requests from it in small batches and spends them
-- locally. The table is UNLOGGED: a counter lost in a crash only resets a
-- minute's budget, and the hot updates write no WAL.

CREATE UNLOGGED TABLE rate_limit_windows (
    scope        text        NOT NULL CHECK (length(scope) BETWEEN 1 AND 200),
    window_start timestamptz NOT NULL,
    used         bigint      NOT NULL CHECK (used >= 0),
    PRIMARY KEY (scope, window_start)
);

CREATE INDEX rate_limit_windows_start_idx ON rate_limit_windows (window_start);
