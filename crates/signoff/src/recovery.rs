//! The ways back in and the address they use: "Forgot your password?" and its reset, an
//! account's e-mail address (added or changed after a fresh proof, confirmed by a mailed link),
//! and the notices sent when something about the account changes. The pages and routes are
//! `pages.rs`; the end of every session on a reset is `lifecycle::password_reset`; the tokens
//! are `mail_tokens.rs`; what the mails say is `notices.rs`.
//!
//! **No enumeration** (OWASP Forgot Password cheat sheet): a reset request is answered before
//! anything about accounts is looked up. The lookup, the per-account limit and the mail happen
//! afterwards, in a task of their own, so the answer and its time are the same whether or not an
//! account matches, has an address, or was sent too many links already. An address already used by
//! another account is told so by mail, at that address; the person asking sees the usual answer.

use crate::{
    audit,
    backend::UserRecord,
    client_addr::RequestMeta,
    db::Database,
    error::AppError,
    mail::{self, check_address, AddressError, Mail},
    mail_tokens::{self, Granted, Purpose},
    names, notices, on_db,
    signoff::Signoff,
    throttle,
};

pub use crate::mail_tokens::Recovery;

/// The longest "username or e-mail address" read.
const IDENTIFIER_MAX_CHARS: usize = mail::MAX_ADDRESS_LEN;

impl From<AddressError> for AppError {
    fn from(error: AddressError) -> Self {
        AppError::invalid_input(match error {
            AddressError::TooLong => "An e-mail address has at most 254 characters.",
            AddressError::Malformed => "That is not an e-mail address (name@example.com).",
        })
    }
}

/// What a person typed into "Forgot your password?", once checked.
enum Identifier {
    Address(String),
    Username(String),
}

fn identifier(typed: &str) -> Result<Identifier, AppError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err(AppError::invalid_input(
            "Enter your username or your e-mail address.",
        ));
    }
    if typed.chars().count() > IDENTIFIER_MAX_CHARS {
        return Err(AppError::invalid_input(
            "That is longer than any username or e-mail address.",
        ));
    }
    if typed.chars().any(char::is_control) {
        return Err(AppError::invalid_input(
            "That is not a username or an e-mail address.",
        ));
    }
    // Usernames have no `@` (`validate`): with one, it is an address.
    if typed.contains('@') {
        Ok(Identifier::Address(check_address(typed)?))
    } else {
        Ok(Identifier::Username(names::lookup_key(typed)))
    }
}

/// An account as the mail flows need it.
#[derive(Debug, sqlx::FromRow)]
struct Account {
    id: i64,
    username: String,
    email: Option<String>,
}

/// Which column [`account_by`] looks in.
#[derive(Clone, Copy)]
enum By {
    Email,
    UsernameKey,
}

async fn account_by(db: &Database, by: By, value: &str) -> Result<Option<Account>, AppError> {
    let sql = match by {
        By::Email => "SELECT id, username, email FROM users WHERE email = $1",
        By::UsernameKey => "SELECT id, username, email FROM users WHERE username_key = $1",
    };
    on_db!(db, |pool| {
        sqlx::query_as(sql).bind(value).fetch_optional(pool).await
    })
    .map_err(database)
}

fn database(error: sqlx::Error) -> AppError {
    tracing::error!(%error, "database error");
    AppError::unavailable()
}

/// "Forgot your password?": checks the input, counts the request against its client address
/// (429 when full), and answers. The reset mail, if an account matches and has a confirmed
/// address and has not been sent too many links within the window, is written afterwards
/// (see the module's note on enumeration).
pub async fn forgot(state: &Signoff, typed: &str, meta: &RequestMeta) -> Result<(), AppError> {
    let identifier = identifier(typed)?;
    let buckets = throttle::forgot_buckets(&state.throttle, meta.ip);
    // Every request counts, whatever it names: the reservation is never taken back.
    let _counted = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
    let Ok(permit) = state.recovery.lookup_permit() else {
        tracing::warn!("too many reset requests being looked up; shedding");
        return Err(AppError::busy());
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(error) = send_reset_link(&state, identifier).await {
            tracing::warn!(error = %error.message, "could not send a reset link");
        }
        drop(permit);
    });
    Ok(())
}

async fn send_reset_link(state: &Signoff, identifier: Identifier) -> Result<(), AppError> {
    let account = match &identifier {
        Identifier::Address(address) => account_by(&state.db, By::Email, address).await?,
        Identifier::Username(key) => account_by(&state.db, By::UsernameKey, key).await?,
    };
    let Some(Account {
        id,
        username,
        email: Some(address),
    }) = account
    else {
        tracing::info!("reset requested for no account with a confirmed address");
        return Ok(());
    };
    // At most `MAIL_LINKS_PER_WINDOW` links per account per window, however many requests
    // arrive at once (the reservation is atomic): the rest are dropped without a word.
    let buckets = throttle::mail_link_bucket(&state.throttle, "reset", id);
    if throttle::reserve(&state.db, &state.throttle, &buckets)
        .await
        .is_err()
    {
        tracing::info!(
            user_id = id,
            "reset link not sent: the account's limit is reached"
        );
        return Ok(());
    }
    let from = state.mailer.from();
    on_db!(&state.db, |pool| async {
        let mut tx = pool.begin().await?;
        let token = mail_tokens::issue((&mut *tx).into(), id, Purpose::Reset, None).await?;
        let link = state.recovery.link("/reset", &token);
        mail::enqueue(
            (&mut *tx).into(),
            from,
            &notices::reset_link(&address, &username, &link),
        )
        .await?;
        tx.commit().await
    }
    .await)
    .map_err(database)?;
    state.mailer.wake();
    tracing::info!(user_id = id, "reset link written to the outbox");
    Ok(())
}

/// Why a mailed link did not work.
#[derive(Debug)]
pub enum LinkError {
    /// Unknown, used, expired, or for another account: one answer for all ("this link does not
    /// work"), and nothing changed.
    Unusable,
    /// Something else went wrong (a rule of the new password, the database).
    App(AppError),
}

impl From<AppError> for LinkError {
    fn from(error: AppError) -> Self {
        LinkError::App(error)
    }
}

/// The account a reset link is for, if the link can be used now (the page shows its form only
/// then; looking uses nothing).
pub async fn reset_link_account(
    state: &Signoff,
    token: &str,
) -> Result<Option<UserRecord>, AppError> {
    let Some(Granted { user_id, .. }) = mail_tokens::peek(&state.db, token, Purpose::Reset)
        .await
        .map_err(database)?
    else {
        return Ok(None);
    };
    state.backend.user(user_id).await
}

/// Sets a new password with a reset link: the link must work (checked first, so a bad link
/// costs no hash), the password must pass the rules; then `lifecycle::password_reset` ends every
/// session and signs the person in. Returns the account.
pub async fn reset(
    auth: &mut crate::AuthSession,
    state: &Signoff,
    token: &str,
    new_password: &str,
    meta: &RequestMeta,
) -> Result<UserRecord, LinkError> {
    let Some(user) = reset_link_account(state, token).await? else {
        return Err(LinkError::Unusable);
    };
    let updated = state.backend.new_password(&user, new_password).await?;
    match crate::lifecycle::password_reset(auth, state, &updated, token, meta).await? {
        Some(()) => Ok(updated),
        // Used by a request that finished first.
        None => Err(LinkError::Unusable),
    }
}

/// An account's address: the confirmed one, and one waiting for its confirmation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addresses {
    /// The confirmed address, where mail goes.
    pub confirmed: Option<String>,
    /// An address a confirmation link was sent to, not yet confirmed.
    pub pending: Option<String>,
}

/// The account's addresses.
pub async fn addresses(state: &Signoff, user_id: i64) -> Result<Addresses, AppError> {
    let confirmed = on_db!(&state.db, |pool| {
        sqlx::query_scalar::<_, Option<String>>("SELECT email FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })
    .map_err(database)?
    .flatten();
    let pending = mail_tokens::pending_address(&state.db, user_id)
        .await
        .map_err(database)?;
    Ok(Addresses { confirmed, pending })
}

/// Sends a confirmation link to `typed` for account `user` (whose fresh proof the caller has
/// checked). 400 for an address that cannot be one; 429 past the account's limit of links. The
/// answer is the same when another account uses the address: that address is told instead.
pub async fn request_address(
    state: &Signoff,
    user: &UserRecord,
    typed: &str,
) -> Result<(), AppError> {
    let address = check_address(typed)?;
    let buckets = throttle::mail_link_bucket(&state.throttle, "verify", user.id);
    let _counted = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
    let holder = account_by(&state.db, By::Email, &address).await?;
    let from = state.mailer.from();
    let site = &state.recovery.site;
    on_db!(&state.db, |pool| async {
        let mut tx = pool.begin().await?;
        match holder {
            // Already this account's: nothing to confirm.
            Some(holder) if holder.id == user.id => {}
            Some(_) => {
                mail::enqueue(
                    (&mut *tx).into(),
                    from,
                    &notices::address_in_use(&address, site),
                )
                .await?
            }
            None => {
                // A new address replaces any earlier one waiting for confirmation.
                mail_tokens::void((&mut *tx).into(), user.id, Purpose::Verify).await?;
                let token =
                    mail_tokens::issue((&mut *tx).into(), user.id, Purpose::Verify, Some(&address))
                        .await?;
                let link = state.recovery.link("/verify-email", &token);
                mail::enqueue(
                    (&mut *tx).into(),
                    from,
                    &notices::verify_link(&address, &user.username, &link),
                )
                .await?;
            }
        }
        tx.commit().await
    }
    .await)
    .map_err(database)?;
    state.mailer.wake();
    Ok(())
}

/// The address a confirmation link would confirm, if it can be used now (by `signed_in`, when
/// someone is signed in: a link for another account does not work here).
pub async fn confirm_link_address(
    state: &Signoff,
    token: &str,
    signed_in: Option<i64>,
) -> Result<Option<String>, AppError> {
    let granted = mail_tokens::peek(&state.db, token, Purpose::Verify)
        .await
        .map_err(database)?;
    Ok(granted
        .filter(|granted| signed_in.is_none_or(|user_id| user_id == granted.user_id))
        .and_then(|granted| granted.address))
}

/// Confirms an address with its link: it becomes the account's, the link is used, and the old
/// address (if any) is told, in one transaction. A link for another account than the one signed
/// in is [`LinkError::Unusable`] and changes nothing; so is an address another account confirmed
/// meanwhile (409-like, but said the same way: the link no longer works).
pub async fn confirm_address(
    state: &Signoff,
    token: &str,
    signed_in: Option<i64>,
    meta: &RequestMeta,
) -> Result<String, LinkError> {
    let from = state.mailer.from();
    let origin = notices::Origin::of(&state.recovery.site, meta);
    let done: Result<Option<(i64, String)>, sqlx::Error> = on_db!(&state.db, |pool| async {
        let mut tx = pool.begin().await?;
        let Some(Granted {
            user_id,
            address: Some(address),
        }) = mail_tokens::take((&mut *tx).into(), token, Purpose::Verify).await?
        else {
            return Ok(None);
        };
        if signed_in.is_some_and(|signed_in| signed_in != user_id) {
            return Ok(None);
        }
        let old: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT username, email FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((username, old)) = old else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(&address)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if let Some(old) = old.filter(|old| *old != address) {
            mail::enqueue(
                (&mut *tx).into(),
                from,
                &notices::email_changed(&old, &username, &address, &origin),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some((user_id, address)))
    }
    .await);
    let (user_id, address) = match done {
        Ok(Some(done)) => done,
        Ok(None) => return Err(LinkError::Unusable),
        // Another account confirmed this address first (the unique index): this link is spent.
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            return Err(LinkError::Unusable)
        }
        Err(error) => return Err(LinkError::App(database(error))),
    };
    state.mailer.wake();
    audit::record_detail(
        &state.db,
        audit::Event::EmailChanged,
        Some(user_id),
        None,
        meta.ip,
        Some(&notices::mask(&address)),
    )
    .await;
    Ok(address)
}

/// Writes a notice to account `user_id`'s confirmed address, if it has one (a change that has no
/// transaction of its own to put it in: a sign-in from a new browser, a provider linked). A
/// failure is logged: the change it reports has happened.
pub async fn notify(state: &Signoff, user_id: i64, notice: impl FnOnce(&str, &str) -> Mail) {
    let written: Result<bool, sqlx::Error> = on_db!(&state.db, |pool| async {
        let account: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT username, email FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(pool)
                .await?;
        let Some((username, Some(address))) = account else {
            return Ok(false);
        };
        let mut connection = pool.acquire().await?;
        mail::enqueue(
            (&mut *connection).into(),
            state.mailer.from(),
            &notice(&address, &username),
        )
        .await?;
        Ok(true)
    }
    .await);
    match written {
        Ok(true) => state.mailer.wake(),
        Ok(false) => {}
        Err(error) => tracing::warn!(user_id, %error, "could not write a notice to the outbox"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_names_or_checked_addresses() {
        assert!(matches!(identifier(" Ann "), Ok(Identifier::Username(key)) if key == "ann"));
        assert!(matches!(
            identifier("Ann@Example.COM"),
            Ok(Identifier::Address(address)) if address == "Ann@example.com"
        ));
        for bad in [
            "",
            "   ",
            "a@b\r\nBcc: x@y",
            "no\u{0}pe",
            &"a".repeat(300),
            "two@@",
        ] {
            assert!(identifier(bad).is_err(), "{bad:?}");
        }
    }
}
