-- Signoff's schema on PostgreSQL: the same tables and meaning as migrations/sqlite, in one step.
-- sqlx runs migrations under an advisory lock, so instances starting together apply it once.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT        NOT NULL,
    username_key  TEXT        NOT NULL UNIQUE,  -- trimmed, lower-cased: what must be unique
    password_hash TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Sessions, in the layout tower-sessions-sqlx-store's PostgresStore reads (configured to use
-- public.tower_sessions), plus the columns Signoff keeps for listing and revoking.
CREATE TABLE tower_sessions (
    id           TEXT        PRIMARY KEY NOT NULL,
    data         BYTEA       NOT NULL,
    expiry_date  TIMESTAMPTZ NOT NULL,
    user_id      BIGINT      REFERENCES users (id) ON DELETE CASCADE,
    handle       TEXT        UNIQUE,
    created_at   BIGINT,
    last_seen_at BIGINT,
    user_agent   TEXT
);
CREATE INDEX tower_sessions_expiry ON tower_sessions (expiry_date);
CREATE INDEX tower_sessions_user ON tower_sessions (user_id);

CREATE TABLE login_failures (
    bucket TEXT   NOT NULL,
    at     BIGINT NOT NULL  -- Unix milliseconds
);
CREATE INDEX login_failures_bucket_at ON login_failures (bucket, at);

CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,  -- Unix milliseconds
    user_id     BIGINT REFERENCES users (id) ON DELETE CASCADE,
    event       TEXT   NOT NULL,
    session_tag TEXT,
    ip          TEXT
);
CREATE INDEX audit_events_user_at ON audit_events (user_id, at);

-- Periodic jobs shared by all instances: a job runs only on the instance that advances its row,
-- so expired sessions are swept once per period, not once per instance.
CREATE TABLE maintenance (
    job         TEXT   PRIMARY KEY,
    last_run_ms BIGINT NOT NULL
);
INSERT INTO maintenance (job, last_run_ms) VALUES ('sweep_expired_sessions', 0);
