-- E-mail addresses and password reset (issue 22).
-- An account's verified address. Only a verified address is stored here (an address waiting for
-- its confirmation is in mail_tokens), so the unique index is "unique among verified ones". The
-- domain is stored in lower case (crates/signoff/src/mail.rs, check_address): two spellings of
-- one domain are one address; the local part is compared as typed, as RFC 5321 says.
ALTER TABLE users ADD COLUMN email TEXT;
CREATE UNIQUE INDEX users_email ON users (email);

-- Single-use tokens sent by mail (crates/signoff/src/mail_tokens.rs): a password reset, or the
-- confirmation of a new address. Only a SHA-256 of the token is kept: the table is worth nothing
-- to whoever reads it.
CREATE TABLE mail_tokens (
    token_hash TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT   NOT NULL,  -- 'reset' or 'verify'
    address    TEXT,             -- 'verify': the address it confirms
    created_ms BIGINT NOT NULL,  -- Unix milliseconds
    expires_ms BIGINT NOT NULL,
    used_ms    BIGINT            -- set once, when used (or voided by a password change)
);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose);
CREATE INDEX mail_tokens_expiry ON mail_tokens (expires_ms);
