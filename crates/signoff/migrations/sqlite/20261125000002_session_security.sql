-- Who owns each session, and what the user may see of it. Written by Signoff's session store from
-- the session's own data on every create/save; NULL only for sessions nobody has signed in to.
-- `handle` is a one-way hash of the session id: the public name of a session (revocation, lists),
-- which can never be turned back into a cookie.
ALTER TABLE tower_sessions ADD COLUMN user_id INTEGER REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE tower_sessions ADD COLUMN handle TEXT;
ALTER TABLE tower_sessions ADD COLUMN created_at INTEGER;
ALTER TABLE tower_sessions ADD COLUMN last_seen_at INTEGER;
ALTER TABLE tower_sessions ADD COLUMN user_agent TEXT;
CREATE INDEX tower_sessions_user ON tower_sessions (user_id);
CREATE UNIQUE INDEX tower_sessions_handle ON tower_sessions (handle);

-- Failed sign-ins, for throttling. `bucket` is "user:<username key>" or "ip:<address>". Rows older
-- than the throttle window are pruned as new ones arrive. In the database (not process memory) so
-- that every instance sees the same count.
CREATE TABLE login_failures (
    bucket TEXT    NOT NULL,
    at     INTEGER NOT NULL  -- Unix milliseconds
);
CREATE INDEX login_failures_bucket_at ON login_failures (bucket, at);

-- Security events, shown to the user as "Recent activity". `session_tag` is a hash of the session
-- id (never the id itself).
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,  -- Unix milliseconds
    user_id     INTEGER REFERENCES users (id) ON DELETE CASCADE,
    event       TEXT    NOT NULL,
    session_tag TEXT,
    ip          TEXT
);
CREATE INDEX audit_events_user_at ON audit_events (user_id, at);
