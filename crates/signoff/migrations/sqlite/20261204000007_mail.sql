-- Mail (issue 22): every mail is first a row here, written in the same transaction as the change
-- it reports, then sent by a background worker (crates/signoff/src/mail.rs). A mail is never
-- lost to an SMTP server that is down: the row waits, with a growing delay between attempts.
CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The Message-ID header, made when the row is written, so that every attempt sends the same.
    message_id       TEXT    NOT NULL UNIQUE,
    recipient        TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    -- Cleared once sent: a link in a mail is a secret until it is used or expires.
    text_body        TEXT    NOT NULL,
    html_body        TEXT    NOT NULL,
    created_ms       BIGINT  NOT NULL,  -- Unix milliseconds; the Date header
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT  NOT NULL,
    -- An instance holds the row while it sends (a lease: another takes it over if it dies).
    claimed_until_ms BIGINT  NOT NULL DEFAULT 0,
    sent_ms          BIGINT,
    last_error       TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_ms) WHERE sent_ms IS NULL;
CREATE INDEX mail_outbox_sent ON mail_outbox (sent_ms) WHERE sent_ms IS NOT NULL;
