//! One name, one account: when two usernames are the same name, and which names may be new.
//!
//! A name has three forms:
//! - **display**: what is stored and shown. RFC 8265 (PRECIS) `UsernameCasePreserved`: full-width
//!   and half-width letters mapped to their ordinary forms, then NFC. So `ａｌｉｃｅ` is stored as
//!   `alice`, and a decomposed `José` (NFD, as macOS keyboards send it) as the composed one.
//! - **key**: what must be unique and what sign-in looks up. RFC 8265 `UsernameCaseMapped`: the
//!   display form, lower-cased. Every way of typing one name gives one key.
//! - **readings**: how the name reads, by UTS #39's confusable skeleton, lower-cased, of the
//!   display form and of the key. Names that people read as the same (`paypal` and `pаypal` with a
//!   Cyrillic `а`, `alice` and `aIice`, `ÉLODIE` and `éIodie`) share a reading, and a reading
//!   belongs to one account (`username_readings`).
//!
//! New names must also pass UTS #39: every character allowed in identifiers (General Security
//! Profile) and at most one script beside Latin, in the combinations the "highly restrictive"
//! level allows (Latin with Han and kana, Han and Hangul, Han and Bopomofo). A name that mixes
//! Cyrillic or Greek letters into Latin ones is refused outright, whatever it looks like.
//!
//! Names that accounts had before these rules (`adopt_old_names`) keep working even when they
//! would not be accepted today: [`lookup_key`] never refuses a name.

use std::collections::HashMap;

use precis_profiles::{
    precis_core::profile::PrecisFastInvocation, UsernameCaseMapped, UsernameCasePreserved,
};
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

use crate::validate;
use crate::{db::Database, error::AppError, on_db};

/// A username that may be given to a new account, in its three forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The form stored and shown (`UsernameCasePreserved`).
    pub display: String,
    /// The unique form sign-in looks up (`UsernameCaseMapped`).
    pub key: String,
    /// One or two readings ([`readings`]).
    pub readings: Vec<String>,
}

/// The characters a new name may have beyond letters and digits.
const PUNCTUATION: [char; 3] = ['_', '-', '.'];

/// Checks a name for a new account and returns its forms. The message says which rule failed.
pub fn new_name(raw: &str) -> Result<Name, AppError> {
    let trimmed = raw.trim();
    let display = UsernameCasePreserved::enforce(trimmed)
        .map_err(|_| not_allowed())?
        .into_owned();
    let count = display.chars().count();
    if !(validate::USERNAME_MIN_CHARS..=validate::USERNAME_MAX_CHARS).contains(&count) {
        return Err(AppError::invalid_input(format!(
            "Username must be {} to {} characters long.",
            validate::USERNAME_MIN_CHARS,
            validate::USERNAME_MAX_CHARS
        )));
    }
    if !display.chars().all(allowed_char) {
        return Err(not_allowed());
    }
    let letters: String = display
        .chars()
        .filter(|c| !PUNCTUATION.contains(c))
        .collect();
    if letters.is_empty() {
        return Err(AppError::invalid_input(
            "Username must have at least one letter or digit.",
        ));
    }
    if !letters
        .as_str()
        .check_restriction_level(RestrictionLevel::HighlyRestrictive)
    {
        return Err(AppError::invalid_input(
            "Username may not mix letters of different alphabets (such as Latin with Cyrillic or Greek).",
        ));
    }
    let key = UsernameCaseMapped::enforce(display.as_str())
        .map_err(|_| not_allowed())?
        .into_owned();
    let readings = readings(&display, &key);
    Ok(Name {
        display,
        key,
        readings,
    })
}

/// A name for a new account made from a provider's claim (`preferred_username`, an e-mail's
/// local part, a full name): compatibility forms folded, spaces made hyphens, characters that
/// names may not have dropped, room left for a `-NN` suffix. `None` if what is left is not a
/// name the rules accept (too short, or mixed scripts).
pub fn made_from(claim: &str) -> Option<Name> {
    let cleaned: String = claim
        .trim()
        .nfkc()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .filter(|&c| allowed_char(c))
        .take(validate::USERNAME_MAX_CHARS - 4)
        .collect();
    new_name(&cleaned).ok()
}

/// The key a typed name is looked up by (sign-in, the operator's `unlock-account`). Never refuses:
/// a name that PRECIS does not accept can still belong to an account made before these rules,
/// and gets the same key here as `adopt_old_names` gave that account.
pub fn lookup_key(raw: &str) -> String {
    let trimmed = raw.trim();
    match UsernameCaseMapped::enforce(trimmed) {
        Ok(key) => key.into_owned(),
        // The nearest thing PRECIS would do: compatibility forms folded (NFKC covers width
        // mapping), lower-cased, composed.
        Err(_) => trimmed
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfc()
            .collect(),
    }
}

/// How a name reads: UTS #39's skeleton, lower-cased, of the name as shown and of its key. Two
/// names read the same when any of their readings meet. The display form's skeleton is taken
/// before lower-casing, because `aIice` reads as `alice` while its key, `aiice`, does not; the
/// key's, because names are the same whatever their case, so `ÉLODIE` reads as `élodie` too.
/// Lower-cased after, so that `b0b` (`0` maps to `O`) meets `bob`.
pub fn readings(display: &str, key: &str) -> Vec<String> {
    let shown = skeleton(display);
    let folded = skeleton(key);
    if shown == folded {
        vec![shown]
    } else {
        vec![shown, folded]
    }
}

fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text)
        .collect::<String>()
        .to_lowercase()
}

/// A name's display form for an account that had it before these rules: what PRECIS makes of it
/// if it can, else the name as it was.
fn old_display(username: &str) -> String {
    UsernameCasePreserved::enforce(username.trim())
        .map(|name| name.into_owned())
        .unwrap_or_else(|_| username.trim().to_owned())
}

fn allowed_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || PUNCTUATION.contains(&c)
    } else {
        // Letters, marks and digits that UTS #39 allows in identifiers: this keeps out symbols,
        // obsolete scripts and invisible characters that PRECIS alone would let through.
        c.identifier_allowed()
    }
}

fn not_allowed() -> AppError {
    AppError::invalid_input("Username may contain only letters, digits, '_', '-' and '.'.")
}

/// What [`adopt_old_names`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Accounts whose key and readings were computed with these rules.
    pub accounts: u64,
    /// Accounts renamed because an older account has the same name under these rules.
    pub renamed: u64,
    /// Accounts whose name reads like an older account's: both keep their names (they were
    /// different as typed); the newer is left without the readings already taken, and no new
    /// name may read like either.
    pub lookalikes: u64,
}

/// One account as it was before these rules.
#[derive(sqlx::FromRow)]
struct OldName {
    id: i64,
    username: String,
}

/// Gives accounts made before these rules (`name_rules = 0`: every account at the first start
/// after the upgrade, and any an older instance made since) their key and readings. Runs at
/// start-up and at every sweep; cheap when there is nothing to do.
///
/// When two accounts now have the same key (`alice` and `ａｌｉｃｅ`; `José` in NFC and in NFD),
/// the older account keeps the name and each newer one is renamed to the first free `name-2`,
/// `name-3`…: a row in `username_changes` and a warning in the log say which and why, so that the
/// operator can tell the owner (whose password and sessions are unchanged). Names that only read
/// alike keep their names.
///
/// One transaction, so that a failure changes nothing and two instances cannot both do it.
pub async fn adopt_old_names(db: &Database) -> Result<Adopted, sqlx::Error> {
    let pending: bool = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE name_rules = 0)")
            .fetch_one(pool)
            .await
    })?;
    if !pending {
        return Ok(Adopted::default());
    }
    on_db!(db, |pool| async {
        let mut tx = pool.begin().await?;
        // Take the write lock first (SQLite) or the table's rows (PostgreSQL), so that a second
        // instance waits here and then finds nothing left to do.
        sqlx::query("UPDATE users SET name_rules = name_rules WHERE name_rules = 0")
            .execute(&mut *tx)
            .await?;
        let old: Vec<OldName> =
            sqlx::query_as("SELECT id, username FROM users WHERE name_rules = 0 ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
        if old.is_empty() {
            tx.commit().await?;
            return Ok(Adopted::default());
        }
        // Keys and readings held by accounts already under these rules.
        let keys: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, username_key FROM users WHERE name_rules = 1")
                .fetch_all(&mut *tx)
                .await?;
        let taken: Vec<String> = sqlx::query_scalar("SELECT reading FROM username_readings")
            .fetch_all(&mut *tx)
            .await?;
        let plan = plan_adoption(&old, &keys, taken);
        // Move the old keys out of the way first: an older account's new key may be a newer
        // account's old one. `\u{1}` cannot start a real key.
        for account in &plan.accounts {
            sqlx::query("UPDATE users SET username_key = $1 WHERE id = $2")
                .bind(format!("\u{1}{}", account.id))
                .bind(account.id)
                .execute(&mut *tx)
                .await?;
        }
        for account in &plan.accounts {
            sqlx::query(
                "UPDATE users SET username = $1, username_key = $2, name_rules = 1 WHERE id = $3",
            )
            .bind(&account.display)
            .bind(&account.key)
            .bind(account.id)
            .execute(&mut *tx)
            .await?;
            for reading in &account.readings {
                sqlx::query("INSERT INTO username_readings (reading, user_id) VALUES ($1, $2)")
                    .bind(reading)
                    .bind(account.id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(change) = &account.renamed {
                sqlx::query(
                    "INSERT INTO username_changes (user_id, old_username, new_username, reason, \
                     changed_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(account.id)
                .bind(&change.old)
                .bind(&account.display)
                .bind(format!("same name as account {}", change.keeper))
                .bind(crate::now_ms())
                .execute(&mut *tx)
                .await?;
                tracing::warn!(
                    user_id = account.id,
                    kept_by = change.keeper,
                    "renamed an account whose name is the same as an older account's under the \
                     PRECIS rules (see username_changes)"
                );
            }
        }
        tx.commit().await?;
        Ok::<Adopted, sqlx::Error>(plan.summary)
    }
    .await)
}

struct Planned {
    id: i64,
    display: String,
    key: String,
    /// The readings of its name that no older account has.
    readings: Vec<String>,
    renamed: Option<Renamed>,
}

struct Renamed {
    old: String,
    keeper: i64,
}

struct Plan {
    accounts: Vec<Planned>,
    summary: Adopted,
}

/// Decides every old account's new forms against the keys and readings already taken. Pure, so
/// that the rules are unit-tested without a database.
///
/// Each key goes to its oldest account first, and only then are the others renamed, so that a
/// rename never takes a name that another account already has as typed.
fn plan_adoption(old: &[OldName], current: &[(i64, String)], taken: Vec<String>) -> Plan {
    let mut keys: HashMap<String, i64> =
        current.iter().map(|(id, key)| (key.clone(), *id)).collect();
    let mut plan = Plan {
        accounts: Vec::with_capacity(old.len()),
        summary: Adopted::default(),
    };
    let mut losers = Vec::new();
    for account in old {
        let display = old_display(&account.username);
        let key = lookup_key(&display);
        match keys.get(&key) {
            Some(&keeper) => losers.push((plan.accounts.len(), keeper)),
            None => {
                keys.insert(key.clone(), account.id);
            }
        }
        plan.accounts.push(Planned {
            id: account.id,
            display,
            key,
            readings: Vec::new(),
            renamed: None,
        });
    }
    for (index, keeper) in losers {
        let account = &mut plan.accounts[index];
        let base: String = account
            .display
            .chars()
            .take(validate::USERNAME_MAX_CHARS - 4)
            .collect();
        let (display, key) = (2..u64::MAX)
            .map(|n| format!("{base}-{n}"))
            .map(|name| {
                let key = lookup_key(&name);
                (name, key)
            })
            .find(|(_, key)| !keys.contains_key(key))
            .unwrap_or_else(|| {
                (
                    format!("user-{}", account.id),
                    format!("user-{}", account.id),
                )
            });
        keys.insert(key.clone(), account.id);
        account.renamed = Some(Renamed {
            old: old[index].username.clone(),
            keeper,
        });
        (account.display, account.key) = (display, key);
        plan.summary.renamed += 1;
    }
    let mut taken: std::collections::HashSet<String> = taken.into_iter().collect();
    for account in &mut plan.accounts {
        let all = readings(&account.display, &account.key);
        let count = all.len();
        account.readings = all
            .into_iter()
            .filter(|reading| taken.insert(reading.clone()))
            .collect();
        if account.readings.len() < count {
            plan.summary.lookalikes += 1;
        }
        plan.summary.accounts += 1;
    }
    plan
}

/// Whether an account already has a name's key (taken) or one of its readings (a lookalike).
/// `None` if the name is free.
pub async fn holder(db: &Database, name: &Name) -> Result<Option<Clash>, sqlx::Error> {
    let first = name
        .readings
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let last = name.readings.last().map(String::as_str).unwrap_or_default();
    let clash: i32 = on_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT CASE \
               WHEN EXISTS (SELECT 1 FROM users WHERE username_key = $1) THEN 2 \
               WHEN EXISTS (SELECT 1 FROM username_readings WHERE reading IN ($2, $3)) THEN 1 \
               ELSE 0 END",
        )
        .bind(&name.key)
        .bind(first)
        .bind(last)
        .fetch_one(pool)
        .await
    })?;
    Ok(match clash {
        2 => Some(Clash::Taken),
        1 => Some(Clash::Lookalike),
        _ => None,
    })
}

/// How a new name clashes with an account's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clash {
    /// Another account has this key.
    Taken,
    /// Another account's name reads the same (UTS #39 skeleton).
    Lookalike,
}

impl From<Clash> for AppError {
    fn from(clash: Clash) -> Self {
        match clash {
            Clash::Taken => AppError::username_taken(),
            Clash::Lookalike => AppError::username_lookalike(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Name {
        new_name(raw).unwrap_or_else(|error| panic!("{raw:?}: {error}"))
    }

    #[test]
    fn one_name_however_it_is_typed() {
        let composed = name("José");
        let decomposed = name("Jose\u{301}");
        assert_eq!(composed, decomposed);
        assert_eq!(composed.display, "José");
        assert_eq!(composed.key, "josé");
        assert_eq!(name("ＡＬＩＣＥ").display, "ALICE");
        assert_eq!(name("ａｌｉｃｅ").key, name("Alice").key);
        assert_eq!(name("  alice ").display, "alice");
        assert_eq!(lookup_key("Jose\u{301}"), composed.key);
        assert_eq!(lookup_key(" ＡＬＩＣＥ"), "alice");
    }

    fn read_alike(a: &str, b: &str) -> bool {
        let (a, b) = (name(a), name(b));
        a.readings
            .iter()
            .any(|reading| b.readings.contains(reading))
    }

    #[test]
    fn names_that_read_the_same_share_a_reading() {
        assert!(read_alike("alice", "aIice"));
        assert!(read_alike("alice", "a1ice"));
        assert!(read_alike("Alice", "AIice"));
        assert!(read_alike("bob", "b0b"));
        // Upper case reads as the lower case it is the same name as.
        assert!(read_alike("ÉLODIE", "éIodie"));
        assert!(read_alike("ÉLODIE", "élodie"));
        // Cyrillic "ѕсоре", every letter a lookalike: one script, so allowed, but it reads "scope".
        assert!(read_alike("ѕсоре", "scope"));
        assert!(!read_alike("alice", "alicia"));
        assert_eq!(name("alice").readings.len(), 1);
    }

    #[test]
    fn new_names_follow_the_rules() {
        for ok in [
            "alice",
            "Zoë.o_k-1",
            "élodie",
            "Łukasz",
            "Дмитрий",
            "山田太郎",
            "yamada山田",
            "김민준",
            "नमस्ते",
            "user_2",
        ] {
            assert!(new_name(ok).is_ok(), "{ok:?} should be accepted");
        }
        for refused in [
            "ab",
            "   ",
            &"a".repeat(33),
            "al ice",
            "al\u{0}ice",
            "a\u{200b}lice", // zero-width space
            "pаypal",        // Cyrillic а among Latin letters
            "αlice",         // Greek alpha among Latin letters
            "bob!",
            "x²y",   // a compatibility character
            "☃snow", // a symbol
            "---",
        ] {
            assert!(new_name(refused).is_err(), "{refused:?} should be refused");
        }
    }

    #[test]
    fn claims_make_names_that_follow_the_rules() {
        let made = |claim: &str| made_from(claim).map(|name| name.display);
        assert_eq!(made("alice").as_deref(), Some("alice"));
        assert_eq!(made("Carol Ann <x>").as_deref(), Some("Carol-Ann-x"));
        assert_eq!(made("Jose\u{301} Ｌｕｉｓ").as_deref(), Some("José-Luis"));
        assert_eq!(made("<script>").as_deref(), Some("script"));
        assert_eq!(made("a"), None);
        assert_eq!(made("pаypal"), None);
        let long = made(&"x".repeat(100)).unwrap_or_default();
        assert!(new_name(&format!("{long}-99")).is_ok());
    }

    #[test]
    fn old_names_keep_a_key() {
        // Accepted by the old rules (alphanumeric), refused by PRECIS: still found at sign-in.
        assert_eq!(lookup_key("x²y"), "x2y");
        assert_eq!(lookup_key("X²Y"), lookup_key("x²y"));
    }

    fn old(id: i64, username: &str) -> OldName {
        OldName {
            id,
            username: username.to_owned(),
        }
    }

    #[test]
    fn the_older_account_keeps_a_name_that_now_collides() {
        let plan = plan_adoption(
            &[
                old(1, "Jose\u{301}"),
                old(2, "josé"),
                old(3, "ａｌｉｃｅ"),
                old(4, "paypal"),
                old(5, "pаypal"),
                old(6, "josé-2"),
            ],
            &[(9, "alice".to_owned())],
            vec![skeleton("alice")],
        );
        let by_id = |id: i64| {
            plan.accounts
                .iter()
                .find(|account| account.id == id)
                .unwrap_or_else(|| panic!("account {id} planned"))
        };
        assert_eq!(by_id(1).display, "José");
        assert_eq!(by_id(1).key, "josé");
        assert!(by_id(1).renamed.is_none());
        // "josé-2" is account 6's name as typed: the rename does not take it.
        assert_eq!(by_id(2).display, "josé-3");
        assert_eq!(by_id(2).renamed.as_ref().map(|r| r.keeper), Some(1));
        assert_eq!(
            by_id(2).renamed.as_ref().map(|r| r.old.as_str()),
            Some("josé")
        );
        assert_eq!(by_id(3).display, "alice-2");
        assert_eq!(by_id(3).renamed.as_ref().map(|r| r.keeper), Some(9));
        // Different as typed: both keep their names; the newer has no readings of its own.
        assert_eq!(by_id(5).display, "pаypal");
        assert!(by_id(5).readings.is_empty());
        assert_eq!(by_id(4).readings, vec!["paypal".to_owned()]);
        assert_eq!(by_id(6).display, "josé-2");
        assert!(by_id(6).renamed.is_none());
        assert_eq!(
            plan.summary,
            Adopted {
                accounts: 6,
                renamed: 2,
                lookalikes: 1
            }
        );
    }
}
