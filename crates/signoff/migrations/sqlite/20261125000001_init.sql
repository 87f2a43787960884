-- Accounts. `username` is the trimmed name as the user typed it; `username_key` is its trimmed,
-- lower-cased form, which is what must be unique (names compare case-insensitively).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Server-side sessions, in the layout tower-sessions-sqlx-store's SqliteStore reads and writes.
-- Created here rather than by the store's own `migrate()` so that all schema lives in one place.
CREATE TABLE tower_sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    data        BLOB    NOT NULL,
    expiry_date INTEGER NOT NULL
);
CREATE INDEX tower_sessions_expiry ON tower_sessions (expiry_date);
