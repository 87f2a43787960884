//! One name, one account (RFC 8265 PRECIS, UTS #39) and one password however it is typed
//! (NIST SP 800-63B-4 §3.1.1.2), through the real endpoints, on the run's backend.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{helpers::*, idp::*};

/// The passwords below: the same characters, composed (NFC) and decomposed (NFD).
const COMPOSED: &str = "crème brûlée à la carte";
const DECOMPOSED: &str = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} la carte";

async fn username_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON user");
    body["username"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_name_typed_another_way_is_the_same_account() {
    let app = spawn_app().await;
    // Registered composed (NFC): the owner signs in from a system that sends it decomposed.
    let response = app.register_attempt("José", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(username_of(response).await, "José");
    for typed in ["Jose\u{301}", "JOSÉ", "JOSE\u{301}", " josé ", "ｊｏｓé"] {
        let response = app.login_attempt(typed, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "sign in as {typed:?}");
        assert_eq!(username_of(response).await, "José");
    }
    // …and nobody registers it again in another form.
    for typed in ["Jose\u{301}", "JOSÉ", "ｊｏｓé", "ＪＯＳＥ\u{301}"] {
        let response = app.register_attempt(typed, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{typed:?}");
        assert_eq!(error_body(response).await.0, "username_taken");
    }
    // Full-width letters are stored as the letters people read.
    let response = app.register_attempt("ａｌｉｃｅ", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(username_of(response).await, "alice");
    assert_eq!(
        app.login_attempt("alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn names_that_read_the_same_are_refused_and_mixed_alphabets_too() {
    // More attempts than one address may make in a window; the throttle is not this test's subject.
    let app = spawn_app_with(&[("REGISTER_MAX_PER_WINDOW", "1000")]).await;
    app.register("alice").await;
    app.register("scope").await;
    app.register("ÉLODIE").await;
    // Lookalikes: a capital I or a digit one for the l (`éIodie` reads as `élodie`, which is
    // `ÉLODIE`); every letter Cyrillic.
    for lookalike in ["aIice", "a1ice", "AIice", "ѕсоре", "éIodie"] {
        let response = app.register_attempt(lookalike, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{lookalike:?}");
        let (code, message) = error_body(response).await;
        assert_eq!(code, "username_taken");
        assert!(message.contains("looks the same"), "{message}");
    }
    // One Cyrillic а among Latin letters: refused whether or not "paypal" exists.
    for mixed in ["pаypal", "αlicia", "bob\u{200b}"] {
        let response = app.register_attempt(mixed, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{mixed:?}");
        assert_eq!(error_body(response).await.0, "invalid_input");
    }
    // Names of one other alphabet, or Latin with Han, are welcome.
    for fine in ["Дмитрий", "山田太郎", "yamada山田", "Zoë"] {
        let response = app.register_attempt(fine, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{fine:?}");
    }
    let users: i64 = signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await
            .expect("count users")
    });
    assert_eq!(users, 7);
}

/// Hundreds of registrations of one name written every way at once: one account. The key and
/// the readings are unique in the database, so no check-then-insert race can let two through.
#[tokio::test]
async fn hundreds_of_spellings_of_one_name_at_once_make_one_account() {
    let app =
        Arc::new(spawn_app_with(&[ONE_CLIENT_LOAD, ("REGISTER_MAX_PER_WINDOW", "100000")]).await);
    let spellings = [
        "élodie",
        "ÉLODIE",
        "e\u{301}lodie",
        "E\u{301}LODIE",
        "ｅ\u{301}ｌｏｄｉｅ",
        "éIodie",
        "é1odie",
        "Élodie",
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..240 {
        let app = Arc::clone(&app);
        let name = spellings[i % spellings.len()];
        tasks.spawn(async move { app.register_attempt(name, PASSWORD).await.status() });
    }
    let mut created = 0;
    while let Some(status) = tasks.join_next().await {
        let status = status.expect("task");
        match status {
            StatusCode::OK => created += 1,
            // Taken, or shed by the bounded hashing queue: never anything else.
            StatusCode::CONFLICT | StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1);
    let users: i64 = signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await
            .expect("count users")
    });
    assert_eq!(users, 1);
}

#[tokio::test]
async fn a_password_typed_decomposed_is_the_same_password() {
    let app = spawn_app().await;
    assert_eq!(
        app.register_attempt("zoe", COMPOSED).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_attempt("zoe", DECOMPOSED).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_attempt("zoe", COMPOSED).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_attempt("zoe", "creme brulee a la carte")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// A hash stored before normalisation (of the bytes as typed, decomposed here) still signs its
/// owner in, and that sign-in replaces it with a hash of the normal form: from then on the
/// composed form works too, and the old hash is gone.
#[tokio::test]
async fn an_old_hash_signs_in_and_is_replaced_by_one_of_the_normal_form() {
    let app = spawn_app().await;
    app.register("olga").await;
    // Made by the argon2 crate 0.5.3 (Signoff's before 0.6), of DECOMPOSED's bytes as typed.
    let old = "$argon2id$v=19$m=19456,t=2,p=1$c2l4dGVlbiBieXRlIHNsdA$\
               C50JuJXK69ADqD1lQS9VdtiZYqW7vsmIiwObmbfN4oU"
        .to_owned();
    let stored_hash = || async {
        signoff::on_db!(&app.db, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT password_hash FROM users WHERE username_key = 'olga'",
            )
            .fetch_one(pool)
            .await
            .expect("the hash")
        })
    };
    signoff::on_db!(&app.db, |pool| {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE username_key = 'olga'")
            .bind(&old)
            .execute(pool)
            .await
            .expect("store the old hash")
            .rows_affected()
    });
    assert_eq!(
        app.login_attempt("olga", COMPOSED).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old hash is of the decomposed bytes"
    );
    assert_eq!(
        app.login_attempt("olga", DECOMPOSED).await.status(),
        StatusCode::OK
    );
    let rehashed = stored_hash().await;
    assert_ne!(rehashed, old);
    assert!(rehashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert_eq!(
        app.login_attempt("olga", COMPOSED).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login_attempt("olga", DECOMPOSED).await.status(),
        StatusCode::OK
    );
    assert_eq!(stored_hash().await, rehashed, "rehashed once");
}

/// A hash with today's parameters is kept at sign-in; one made with cheaper parameters (made
/// by the argon2 crate 0.5.3, as an older Signoff might have stored it) signs its owner in and
/// is replaced by one with today's.
#[tokio::test]
async fn only_hashes_with_other_parameters_are_replaced_at_sign_in() {
    let app = spawn_app().await;
    app.register("petra").await;
    let stored = |name: &'static str| {
        let db = app.db.clone();
        async move {
            signoff::on_db!(&db, |pool| {
                sqlx::query_scalar::<_, String>(
                    "SELECT password_hash FROM users WHERE username_key = $1",
                )
                .bind(name)
                .fetch_one(pool)
                .await
                .expect("the hash")
            })
        }
    };
    let current = stored("petra").await;
    app.login("petra").await;
    assert_eq!(stored("petra").await, current, "a current hash is kept");

    app.register("quentin").await;
    let cheaper = "$argon2id$v=19$m=4096,t=3,p=1$c2l4dGVlbiBieXRlIHNsdA$\
                   j9ehIEOwYmHkj4mvZVf1HoXuT6Zusy5NK0kVg+rRvYc";
    signoff::on_db!(&app.db, |pool| {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE username_key = 'quentin'")
            .bind(cheaper)
            .execute(pool)
            .await
            .expect("store the cheaper hash")
            .rows_affected()
    });
    assert_eq!(
        app.login_attempt("quentin", "a cheaper hash of old")
            .await
            .status(),
        StatusCode::OK
    );
    let replaced = stored("quentin").await;
    assert!(
        replaced.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{replaced}"
    );
    assert_eq!(
        app.login_attempt("quentin", "a cheaper hash of old")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(stored("quentin").await, replaced, "replaced once");
}

/// Accounts made before these rules, as the schema migration leaves them (`name_rules = 0`,
/// keys trimmed and lower-cased only): the next start gives them PRECIS keys. Where two now
/// collide the older keeps the name and the newer is renamed, recorded, and still signs in
/// with its password; lookalikes keep their names.
#[tokio::test]
async fn accounts_from_before_the_rules_are_adopted_at_the_next_start() {
    let mut first = spawn_app().await;
    // (registered as, then rewritten to the name it had under the old rules)
    let old = [
        ("olda", "Jose\u{301}"),
        ("oldb", "José"),
        ("oldc", "alice"),
        ("oldd", "ａｌｉｃｅ"),
        ("olde", "paypal"),
        ("oldf", "pаypal"),
    ];
    for (registered, _) in old {
        first.register(registered).await;
    }
    for (registered, then) in old {
        signoff::on_db!(&first.db, |pool| {
            sqlx::query(
                "UPDATE users SET username = $1, username_key = $2, name_rules = 0 \
                 WHERE username_key = $3",
            )
            .bind(then)
            .bind(then.trim().to_lowercase())
            .bind(registered)
            .execute(pool)
            .await
            .expect("rewrite to the old rules")
            .rows_affected()
        });
    }
    // What the old schema had: no readings.
    signoff::on_db!(&first.db, |pool| {
        sqlx::query("DELETE FROM username_readings")
            .execute(pool)
            .await
            .expect("forget the readings")
            .rows_affected()
    });
    first.stop().await;

    let app = spawn_app_on(&first.test_db, &[]).await;
    let sign_in = |name: &'static str| {
        let app = &app;
        async move {
            let response = app.login_attempt(name, PASSWORD).await;
            assert_eq!(response.status(), StatusCode::OK, "sign in as {name:?}");
            username_of(response).await
        }
    };
    // The older José keeps the name, typed either way.
    assert_eq!(sign_in("José").await, "José");
    assert_eq!(sign_in("Jose\u{301}").await, "José");
    // The newer one is "José-2" now, with its own password and account.
    assert_eq!(sign_in("josé-2").await, "José-2");
    assert_eq!(sign_in("alice").await, "alice");
    assert_eq!(sign_in("ａｌｉｃｅ").await, "alice");
    assert_eq!(sign_in("alice-2").await, "alice-2");
    // Lookalikes were different names as typed: both keep theirs.
    assert_eq!(sign_in("paypal").await, "paypal");
    assert_eq!(sign_in("pаypal").await, "pаypal");
    // …and no new name may look like them.
    let response = app.register_attempt("paypaI", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let changes: Vec<(String, String, String)> = signoff::on_db!(&app.db, |pool| {
        sqlx::query_as(
            "SELECT old_username, new_username, reason FROM username_changes ORDER BY user_id",
        )
        .fetch_all(pool)
        .await
        .expect("the changes")
    });
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].0, "José");
    assert_eq!(changes[0].1, "José-2");
    assert!(
        changes[0].2.starts_with("same name as account "),
        "{changes:?}"
    );
    assert_eq!(changes[1].0, "ａｌｉｃｅ");
    assert_eq!(changes[1].1, "alice-2");
    let pending: i64 = signoff::on_db!(&app.db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE name_rules = 0")
            .fetch_one(pool)
            .await
            .expect("count")
    });
    assert_eq!(pending, 0);
}

/// Names an identity provider's claims give a new account follow the same rules: a full-width
/// or lookalike name does not make a second "alice", and a name of mixed alphabets is not used.
#[tokio::test]
async fn names_made_from_a_providers_claims_follow_the_same_rules() {
    let (app, _idp) = app_with_idp().await;
    app.register("alice").await;
    let fullwidth = Browser::new().sign_in(&app, "ａｌｉｃｅ").await;
    assert_eq!(app.me(Some(&fullwidth)).await.as_deref(), Some("alice-2"));
    let lookalike = Browser::new().sign_in(&app, "aIice").await;
    let named = app.me(Some(&lookalike)).await.unwrap_or_default();
    assert!(named.starts_with("aIice-"), "{named}");
    let mixed = Browser::new().sign_in(&app, "pаypal").await;
    assert_eq!(app.me(Some(&mixed)).await.as_deref(), Some("user"));
}
