-- The web login limiter's failed attempts (issue 10 item 2), shared by every instance on the database so a
-- password guesser behind a load balancer gets the same 5 tries per e-mail (30 per address) as against one
-- instance, and a restart forgets nothing.
--
-- One row per failed attempt and key: `key` is "email:<address>" or "ip:<address>", `at` milliseconds since the
-- epoch. Rows older than the limiter's window are deleted when a failure is recorded: the table holds at most one
-- window's worth of failures. `(key, at)` serves the per-key count; `(at)` serves that pruning.

CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE INDEX login_failures_key_at ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);
