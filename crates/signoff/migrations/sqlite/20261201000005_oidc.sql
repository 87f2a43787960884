-- Single sign-on (issue 14): OpenID Connect identities, provider sessions, replayed logout tokens.

-- An account's ways in through an OpenID Provider, by the provider's issuer and the subject it
-- names the person by (OpenID Connect Core §5.7: only this pair is a stable identifier). An
-- account may have several; one (issuer, subject) belongs to one account.
CREATE TABLE oidc_identities (
    issuer     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT    NOT NULL,  -- the configured provider id, for display and unlinking
    created_at INTEGER NOT NULL,  -- Unix milliseconds
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

-- An account made by a provider's first sign-in has no password: its users.password_hash is ''
-- (identities::NO_PASSWORD), which no password verifies against.

-- A session signed in through a provider carries that provider's id and its session id (`sid`),
-- copied from the session's data by the store like `user_id`, so that a back-channel logout
-- finds the sessions it names with one indexed query.
ALTER TABLE tower_sessions ADD COLUMN oidc_provider TEXT;
ALTER TABLE tower_sessions ADD COLUMN oidc_sid TEXT;
CREATE INDEX tower_sessions_oidc_sid ON tower_sessions (oidc_provider, oidc_sid);

-- Logout tokens already used, by issuer and `jti`, until they could no longer be accepted
-- anyway: a replayed token is refused by every instance.
CREATE TABLE oidc_logout_tokens (
    issuer     TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,  -- Unix milliseconds
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oidc_logout_tokens_expires ON oidc_logout_tokens (expires_at);

-- Audit events may name what they concern beyond the session (the provider of a sign-in or a
-- provider logout).
ALTER TABLE audit_events ADD COLUMN detail TEXT;
