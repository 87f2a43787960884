-- Abuse resistance (issue 12).
-- Sign-in attempts are reserved before any password is checked: a row per bucket, tagged with the
-- attempt's id, which a successful attempt deletes again. What is left counts as failures.
ALTER TABLE login_failures ADD COLUMN attempt TEXT;
CREATE INDEX login_failures_attempt ON login_failures (attempt);
-- The pruning DELETE filters on time alone.
CREATE INDEX login_failures_at ON login_failures (at);

-- Consecutive failed sign-ins of an account, reset by a success (NIST SP 800-63B-4 caps them at
-- 100); and the random stamp that sessions compare instead of the password hash, replaced at
-- every password change.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN session_stamp TEXT NOT NULL DEFAULT '';

-- Where an account has signed in successfully before: a device cookie (its hash) or a client
-- network. Such clients are not held back by the account's failure count (targeted lockout).
CREATE TABLE trusted_clients (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash   TEXT    NOT NULL,  -- 'device:<hash of the cookie>' or 'net:<address or /64>'
    expires_at INTEGER NOT NULL,  -- Unix milliseconds
    PRIMARY KEY (user_id, key_hash)
);
CREATE INDEX trusted_clients_expires ON trusted_clients (expires_at);
-- Existing accounts get a stamp of their own (sessions made before this stored the hash instead,
-- and end at their next request).
UPDATE users SET session_stamp = lower(hex(randomblob(16)));
