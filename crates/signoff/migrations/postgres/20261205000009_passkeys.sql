-- Passkeys (issue 23): WebAuthn credentials, a third way into an account beside the password and
-- linked providers.

-- The account's WebAuthn user handle: a random UUID made at its first passkey, stored in the
-- authenticator with the credential and returned by a discoverable sign-in. Not the account's id:
-- the handle is readable by whoever holds the authenticator and must say nothing else.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT;
CREATE UNIQUE INDEX users_webauthn_handle ON users (webauthn_handle);

-- One row per registered credential. `credential_id` (base64url) is unique across accounts: the
-- same authenticator credential can never be registered to two of them. `passkey` is
-- webauthn-rs's serialised Passkey (the public key and its state); `sign_count` is its signature
-- counter, kept as a column so that "only upward" is one atomic UPDATE.
CREATE TABLE passkeys (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT   NOT NULL UNIQUE,
    passkey       TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    kind          TEXT,             -- the authenticator's kind when known (e.g. "synced")
    sign_count    BIGINT NOT NULL DEFAULT 0,
    created_ms    BIGINT NOT NULL,  -- Unix milliseconds
    last_used_ms  BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A WebAuthn ceremony (registration, sign-in, confirmation) is used once: its state lives in the
-- session's data, and this row is its single-use ticket. Finishing deletes the row; a second
-- finish of the same ceremony (a replayed assertion, 50 copies at once) finds none.
CREATE TABLE passkey_ceremonies (
    id         TEXT   PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_ms);

-- A session signed in with a passkey carries the passkey's id, copied from its data by the store
-- like `oidc_provider`: removing the passkey ends those sessions with one indexed DELETE.
ALTER TABLE tower_sessions ADD COLUMN passkey_id BIGINT;
CREATE INDEX tower_sessions_passkey ON tower_sessions (passkey_id);
