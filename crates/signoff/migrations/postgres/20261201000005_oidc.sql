-- Single sign-on (issue 14); the same tables and meaning as migrations/sqlite.
CREATE TABLE oidc_identities (
    issuer     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities (user_id);

ALTER TABLE tower_sessions ADD COLUMN oidc_provider TEXT;
ALTER TABLE tower_sessions ADD COLUMN oidc_sid TEXT;
CREATE INDEX tower_sessions_oidc_sid ON tower_sessions (oidc_provider, oidc_sid);

CREATE TABLE oidc_logout_tokens (
    issuer     TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX oidc_logout_tokens_expires ON oidc_logout_tokens (expires_at);

-- Audit events may name what they concern beyond the session (the provider of a sign-in or a
-- provider logout).
ALTER TABLE audit_events ADD COLUMN detail TEXT;
