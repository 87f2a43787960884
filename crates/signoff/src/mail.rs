//! Mail that loses nothing: every mail is first a row of `mail_outbox`, written in the same
//! transaction as the change it reports ([`enqueue`]), then sent by a background worker
//! ([`Mailer::run`]) over SMTP (lettre), with retries and a growing delay while the server is
//! down or refuses. Without `SMTP_URL` (the embedded default) nothing is sent: the worker writes
//! each mail's text, links included, to the log, so every flow works on a fresh machine.
//!
//! Several instances on one PostgreSQL database share the outbox: an instance claims a row
//! (`FOR UPDATE SKIP LOCKED`, then a lease in `claimed_until_ms`) before it sends it, so no two
//! send the same mail. Delivery is at least once only if an instance dies between the SMTP server's
//! "250 OK" and the update that marks the row sent; the mail then goes again after the lease, with
//! the same Message-ID.

use std::{str::FromStr, sync::Arc, time::Duration};

use lettre::{
    message::{Mailbox, MultiPart},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sqlx::{PgConnection, SqliteConnection};
use tokio::sync::Notify;

use crate::{db::Database, now_ms, on_db};

/// The longest an e-mail address may be (RFC 5321: a 256-octet path, less its angle brackets).
pub const MAX_ADDRESS_LEN: usize = 254;

/// How long an instance holds a claimed mail while it sends it. Longer than an SMTP exchange can
/// take (the transport's timeout, below), so that a slow send is never taken over.
const CLAIM_LEASE: Duration = Duration::from_secs(5 * 60);

/// How long one SMTP command may take before the attempt counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the worker looks for mail it was not woken for: retries that fell due, mail another
/// instance left when it stopped.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Sent rows are kept this long (without their bodies) for the operator, then swept.
pub const KEEP_SENT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The sender used in log mode when `MAIL_FROM` is not set.
pub const DEFAULT_FROM: &str = "Signoff <signoff@localhost>";

/// How mail leaves (`SMTP_URL`, `MAIL_FROM`, `MAIL_RETRY_MAX_DELAY`).
#[derive(Clone)]
pub struct MailSettings {
    /// Where mail goes; `None`: to the log.
    pub smtp: Option<SmtpUrl>,
    /// The `From` of every mail.
    pub from: Mailbox,
    /// The longest wait between two attempts at one mail (the delay doubles from a second).
    pub retry_max_delay: Duration,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp: None,
            from: Mailbox::from_str(DEFAULT_FROM).expect("the default sender is a valid mailbox"),
            retry_max_delay: Duration::from_secs(5 * 60),
        }
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp)
            .field("from", &self.from.to_string())
            .field("retry_max_delay", &self.retry_max_delay)
            .finish()
    }
}

/// A checked `SMTP_URL`: `smtps://` (implicit TLS), `smtp://…?tls=required` (STARTTLS), or
/// `smtp://` without TLS to a loopback address only. Its `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpUrl {
    url: String,
    shown: String,
}

impl SmtpUrl {
    /// Checks `url`; the error says what is expected instead.
    pub fn parse(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
        let host = parsed.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        let tls = parsed
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        match (parsed.scheme(), tls.as_deref()) {
            ("smtps", None) | ("smtp", Some("required")) => {}
            ("smtp", None) if is_loopback(host) => {}
            ("smtp", None | Some("opportunistic")) => {
                return Err(
                    "use smtps:// (implicit TLS) or smtp://…?tls=required (STARTTLS); \
                            plain smtp:// only to a loopback address"
                        .into(),
                )
            }
            _ => {
                return Err(
                    "expected smtps://host[:port] or smtp://host[:port]?tls=required".into(),
                )
            }
        }
        // lettre's own reading of the URL (port, credentials, TLS mode) must accept it too.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|error| error.to_string())?;
        let mut shown = parsed.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        Ok(Self {
            url: url.to_owned(),
            shown: shown.to_string(),
        })
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One mail to write to the outbox: a plain-text part and an HTML part saying the same.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The recipient's address (already checked: [`check_address`]).
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Why an address cannot be used. It never reaches a header: the check is made before the
/// address is stored, and again by lettre when the mail is built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// Longer than [`MAX_ADDRESS_LEN`].
    #[error("an e-mail address has at most {MAX_ADDRESS_LEN} characters")]
    TooLong,
    /// Not `local@domain`, or with characters no address has (controls, spaces, CR/LF).
    #[error("that is not an e-mail address")]
    Malformed,
}

/// Checks an address as a person typed it (surrounding spaces removed) and returns it with its
/// domain in lower case (domains are case-insensitive; the local part is left as typed).
pub fn check_address(typed: &str) -> Result<String, AddressError> {
    let typed = typed.trim();
    if typed.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong);
    }
    if typed.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(AddressError::Malformed);
    }
    let (local, domain) = typed.rsplit_once('@').ok_or(AddressError::Malformed)?;
    let address = format!("{local}@{}", domain.to_lowercase());
    // lettre's parser is what builds the header: whatever passes here is what it will accept.
    lettre::Address::from_str(&address).map_err(|_| AddressError::Malformed)?;
    Ok(address)
}

/// A connection in the middle of a transaction, on either backend: `(&mut *tx).into()`.
pub enum Conn<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a mut SqliteConnection> for Conn<'a> {
    fn from(connection: &'a mut SqliteConnection) -> Self {
        Conn::Sqlite(connection)
    }
}

impl<'a> From<&'a mut PgConnection> for Conn<'a> {
    fn from(connection: &'a mut PgConnection) -> Self {
        Conn::Postgres(connection)
    }
}

/// Runs `$body` with `$connection` bound to the connection in a [`Conn`], whichever backend it
/// is on: the same SQL written once, as `on_db!` does for pools.
macro_rules! on_conn {
    ($conn:expr, |$connection:ident| $body:expr) => {
        match $conn {
            $crate::mail::Conn::Sqlite($connection) => $body,
            $crate::mail::Conn::Postgres($connection) => $body,
        }
    };
}
pub(crate) use on_conn;

/// Writes `mail` to the outbox on `conn`, inside the caller's transaction: it is sent if and
/// only if the transaction commits. Call [`Mailer::wake`] after the commit to send it at once.
pub async fn enqueue(conn: Conn<'_>, from: &Mailbox, mail: &Mail) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let message_id = message_id(from);
    on_conn!(conn, |connection| {
        sqlx::query(
            "INSERT INTO mail_outbox (message_id, recipient, subject, text_body, html_body, \
             created_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&message_id)
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(&mail.text)
        .bind(&mail.html)
        .bind(now)
        .execute(connection)
        .await
        .map(|_| ())
    })
}

/// A Message-ID: 128 random bits at the sender's domain.
fn message_id(from: &Mailbox) -> String {
    let mut bytes = [0u8; 16];
    // The id only has to be unique; should the OS fail to give randomness, the time and a counter
    // still are.
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
    }
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("<{hex}@{}>", from.email.domain())
}

/// A claimed row of the outbox.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    message_id: String,
    recipient: String,
    subject: String,
    text_body: String,
    html_body: String,
    created_ms: i64,
    attempts: i32,
}

/// What [`Mailer::send_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Mails the SMTP server accepted (or, in log mode, written to the log).
    pub sent: u64,
    /// Attempts that failed and wait for a retry.
    pub failed: u64,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Log,
}

/// The outbox's worker. Cloning is one reference count.
#[derive(Clone)]
pub struct Mailer(Arc<MailerInner>);

struct MailerInner {
    db: Database,
    transport: Transport,
    from: Mailbox,
    retry_max_delay: Duration,
    wake: Notify,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("smtp", &matches!(self.0.transport, Transport::Smtp(_)))
            .field("from", &self.0.from.to_string())
            .finish()
    }
}

impl Mailer {
    /// The worker for `db`'s outbox with `settings`. The SMTP URL was checked by
    /// [`SmtpUrl::parse`]; should lettre refuse it now, mail stays in the outbox (and is logged)
    /// rather than being lost.
    pub fn new(db: Database, settings: &MailSettings) -> Self {
        let transport = match &settings.smtp {
            None => Transport::Log,
            Some(smtp) => match AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url) {
                Ok(builder) => Transport::Smtp(builder.timeout(Some(SMTP_TIMEOUT)).build()),
                Err(error) => {
                    tracing::error!(%error, url = ?smtp, "SMTP_URL refused; mail goes to the log");
                    Transport::Log
                }
            },
        };
        Self(Arc::new(MailerInner {
            db,
            transport,
            from: settings.from.clone(),
            retry_max_delay: settings.retry_max_delay,
            wake: Notify::new(),
        }))
    }

    /// The `From` of every mail.
    pub fn from(&self) -> &Mailbox {
        &self.0.from
    }

    /// Whether mail goes to an SMTP server (`false`: to the log).
    pub fn sends(&self) -> bool {
        matches!(self.0.transport, Transport::Smtp(_))
    }

    /// Tells the worker that mail was committed to the outbox, so it goes now rather than at
    /// the next poll.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Sends what is due, for as long as the process runs. A failed pass (database down) is
    /// logged and tried again at the next wake or poll.
    pub async fn run(self) {
        if !self.sends() {
            tracing::warn!(
                "SMTP_URL is not set: mail is written to this log, links included, and not sent \
                 (development only)"
            );
        }
        let poll = POLL_INTERVAL.min(self.0.retry_max_delay);
        loop {
            if let Err(error) = self.send_due().await {
                tracing::warn!(%error, "could not read the mail outbox; will retry");
            }
            tokio::select! {
                () = self.0.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One pass: claims and sends due mail, one row at a time, until none is due.
    pub async fn send_due(&self) -> Result<Delivered, sqlx::Error> {
        let mut delivered = Delivered::default();
        while let Some(mail) = self.claim().await? {
            if self.deliver(mail).await? {
                delivered.sent += 1;
            } else {
                delivered.failed += 1;
            }
        }
        Ok(delivered)
    }

    /// Takes the oldest due row that no other instance holds, for [`CLAIM_LEASE`].
    async fn claim(&self) -> Result<Option<Claimed>, sqlx::Error> {
        let now = now_ms();
        let until = now + CLAIM_LEASE.as_millis() as i64;
        // The same statement on both; PostgreSQL also skips rows another instance is claiming
        // this very moment (SQLite has one writer at a time, so nothing to skip).
        macro_rules! claim {
            ($lock:literal) => {
                concat!(
                    "UPDATE mail_outbox SET claimed_until_ms = $1, attempts = attempts + 1 \
                     WHERE id = (SELECT id FROM mail_outbox WHERE sent_ms IS NULL \
                     AND next_attempt_ms <= $2 AND claimed_until_ms <= $2 ORDER BY id LIMIT 1",
                    $lock,
                    ") RETURNING id, message_id, recipient, subject, text_body, html_body, \
                     created_ms, attempts"
                )
            };
        }
        let statement = match &self.0.db {
            Database::Sqlite(_) => claim!(""),
            Database::Postgres(_) => claim!(" FOR UPDATE SKIP LOCKED"),
        };
        on_db!(&self.0.db, |pool| sqlx::query_as(statement)
            .bind(until)
            .bind(now)
            .fetch_optional(pool)
            .await)
    }

    /// Sends one claimed mail and records the outcome; `true` if it went.
    async fn deliver(&self, mail: Claimed) -> Result<bool, sqlx::Error> {
        let outcome = match &self.0.transport {
            Transport::Log => {
                tracing::info!(
                    to = %mail.recipient,
                    subject = %mail.subject,
                    message_id = %mail.message_id,
                    "mail (SMTP_URL not set, so not sent):\n{}",
                    mail.text_body
                );
                Ok(())
            }
            Transport::Smtp(transport) => match self.message(&mail) {
                Ok(message) => transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error),
            },
        };
        let db = &self.0.db;
        match outcome {
            Ok(()) => {
                // The bodies go once sent: a link in them is a secret until used or expired. In
                // log mode they stay, so a developer can find the mail in the database too.
                let keep_bodies = matches!(self.0.transport, Transport::Log);
                on_db!(db, |pool| {
                    sqlx::query(
                    "UPDATE mail_outbox SET sent_ms = $1, claimed_until_ms = 0, last_error = NULL, \
                     text_body = CASE WHEN $2 THEN text_body ELSE '' END, \
                     html_body = CASE WHEN $2 THEN html_body ELSE '' END WHERE id = $3"
                )
                .bind(now_ms())
                .bind(keep_bodies)
                .bind(mail.id)
                .execute(pool)
                .await
                .map(|_| ())
                })?;
                tracing::debug!(message_id = %mail.message_id, attempts = mail.attempts, "mail sent");
                Ok(true)
            }
            Err(error) => {
                let delay = retry_delay(mail.attempts, self.0.retry_max_delay);
                tracing::warn!(
                    message_id = %mail.message_id,
                    attempts = mail.attempts,
                    retry_in_s = delay.as_secs(),
                    %error,
                    "mail not sent; will retry"
                );
                on_db!(db, |pool| sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_ms = $1, claimed_until_ms = 0, \
                     last_error = $2 WHERE id = $3"
                )
                .bind(now_ms() + delay.as_millis() as i64)
                .bind(&error)
                .bind(mail.id)
                .execute(pool)
                .await
                .map(|_| ()))?;
                Ok(false)
            }
        }
    }

    /// The mail as it goes on the wire: From, To, Subject, Date (when it was written), the
    /// Message-ID made then, and both parts.
    fn message(&self, mail: &Claimed) -> Result<Message, String> {
        let to = Mailbox::from_str(&mail.recipient).map_err(|error| error.to_string())?;
        let written = std::time::UNIX_EPOCH + Duration::from_millis(mail.created_ms.max(0) as u64);
        Message::builder()
            .from(self.0.from.clone())
            .to(to)
            .subject(&mail.subject)
            .date(written)
            .message_id(Some(mail.message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .map_err(|error| error.to_string())
    }
}

/// The wait after the `attempts`-th failure: one second, doubled each time, at most `max`.
fn retry_delay(attempts: i32, max: Duration) -> Duration {
    let exponent = attempts.clamp(1, 31) as u32 - 1;
    Duration::from_secs(1u64 << exponent).min(max)
}

/// Deletes sent rows older than [`KEEP_SENT`], and unsent ones as old: a mail that could not go
/// for a week (an address that refuses) is of no use any more; each is counted in the log.
pub async fn forget_old(db: &Database) -> Result<(u64, u64), sqlx::Error> {
    let before = now_ms() - KEEP_SENT.as_millis() as i64;
    let sent = on_db!(db, |pool| sqlx::query(
        "DELETE FROM mail_outbox WHERE sent_ms IS NOT NULL AND sent_ms < $1"
    )
    .bind(before)
    .execute(pool)
    .await?
    .rows_affected());
    let abandoned = on_db!(db, |pool| sqlx::query(
        "DELETE FROM mail_outbox WHERE sent_ms IS NULL AND created_ms < $1"
    )
    .bind(before)
    .execute(pool)
    .await?
    .rows_affected());
    if abandoned > 0 {
        tracing::warn!(
            mails = abandoned,
            "gave up on mail that could not be sent for a week"
        );
    }
    Ok((sent, abandoned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_their_domain_lower_cased() {
        assert_eq!(
            check_address(" Ann@Example.COM ").unwrap(),
            "Ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@exa mple.com",
            "ann@example.com\r\nBcc: eve@example.com",
            "ann\n@example.com",
            "ann@example.com\0",
        ] {
            assert_eq!(check_address(bad), Err(AddressError::Malformed), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(MAX_ADDRESS_LEN));
        assert_eq!(check_address(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn smtp_urls_need_tls_except_on_loopback_and_hide_their_password() {
        assert!(SmtpUrl::parse("smtps://mail.example.com").is_ok());
        assert!(SmtpUrl::parse("smtp://mail.example.com:587?tls=required").is_ok());
        assert!(SmtpUrl::parse("smtp://127.0.0.1:2525").is_ok());
        assert!(SmtpUrl::parse("smtp://localhost:2525").is_ok());
        assert!(SmtpUrl::parse("smtp://mail.example.com").is_err());
        assert!(SmtpUrl::parse("smtp://mail.example.com?tls=opportunistic").is_err());
        assert!(SmtpUrl::parse("http://mail.example.com").is_err());
        assert!(SmtpUrl::parse("not a url").is_err());
        let url = SmtpUrl::parse("smtps://ann:hunter2@mail.example.com:465").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn retries_wait_longer_each_time_up_to_the_limit() {
        let max = Duration::from_secs(300);
        let delays: Vec<u64> = (1..=10).map(|n| retry_delay(n, max).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(i32::MAX, max), max);
    }
}
