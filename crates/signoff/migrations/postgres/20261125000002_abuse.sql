-- Abuse resistance (issue 12); the same tables and meaning as migrations/sqlite.
ALTER TABLE login_failures ADD COLUMN attempt TEXT;
CREATE INDEX login_failures_attempt ON login_failures (attempt);
CREATE INDEX login_failures_at ON login_failures (at);

ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN session_stamp TEXT NOT NULL DEFAULT '';

CREATE TABLE trusted_clients (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key_hash)
);
CREATE INDEX trusted_clients_expires ON trusted_clients (expires_at);
UPDATE users SET session_stamp = md5(random()::text || clock_timestamp()::text || id::text);
