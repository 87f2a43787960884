//! The mail outbox (crates/signoff/src/mail.rs) against a real SMTP server: what arrives, that a
//! server that is down or refuses delays mail and loses none, that a rolled-back change sends
//! nothing, and that instances sharing the database never send one mail twice.

use std::{collections::HashMap, str::FromStr, time::Duration};

use signoff::{
    db::{Database, PoolSettings},
    mail::{self, Delivered, Mail, MailSettings, Mailer, SmtpUrl},
    on_db,
};

use crate::{helpers::TestDb, smtp::Smtp};

const FROM: &str = "Signoff Test <no-reply@signoff.test>";

async fn database(test_db: &TestDb) -> Database {
    let db = Database::connect(test_db.url(), PoolSettings::default())
        .await
        .expect("open the test database");
    db.migrate().await.expect("migrate");
    db
}

fn settings(smtp: Option<&Smtp>) -> MailSettings {
    MailSettings {
        smtp: smtp.map(|smtp| SmtpUrl::parse(&smtp.url()).expect("the test server's URL")),
        from: lettre::message::Mailbox::from_str(FROM).expect("sender"),
        retry_max_delay: Duration::from_secs(1),
    }
}

fn a_mail(n: usize) -> Mail {
    Mail {
        to: format!("person{n}@example.com"),
        subject: format!("Notice {n}"),
        text: format!("Plain text {n}: https://app.test/reset#token-{n}"),
        html: format!("<p>HTML {n}: <a href=\"https://app.test/reset#token-{n}\">reset</a></p>"),
    }
}

/// Writes `mails` to the outbox in one committed transaction (or rolled back: `commit` false).
async fn enqueue(db: &Database, from: &lettre::message::Mailbox, mails: &[Mail], commit: bool) {
    on_db!(db, |pool| async {
        let mut tx = pool.begin().await.expect("begin");
        for one in mails {
            mail::enqueue((&mut *tx).into(), from, one)
                .await
                .expect("enqueue");
        }
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
    }
    .await)
}

async fn unsent(db: &Database) -> i64 {
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM mail_outbox WHERE sent_ms IS NULL"
    )
    .fetch_one(pool)
    .await
    .expect("count"))
}

#[tokio::test]
async fn a_mail_arrives_with_its_headers_and_both_parts_and_leaves_no_body_behind() {
    let smtp = Smtp::start();
    let test_db = TestDb::new().await;
    let db = database(&test_db).await;
    let mailer = Mailer::new(db.clone(), &settings(Some(&smtp)));
    enqueue(&db, mailer.from(), &[a_mail(1)], true).await;

    let delivered = mailer.send_due().await.expect("send");
    assert_eq!(delivered, Delivered { sent: 1, failed: 0 });
    let received = smtp.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.mail_from, "no-reply@signoff.test");
    assert_eq!(got.rcpt_tos, ["person1@example.com"]);
    assert_eq!(
        got.header("From").as_deref(),
        Some("\"Signoff Test\" <no-reply@signoff.test>")
    );
    assert_eq!(got.header("To").as_deref(), Some("person1@example.com"));
    assert_eq!(got.header("Subject").as_deref(), Some("Notice 1"));
    let date = got.header("Date").expect("a Date header");
    time::OffsetDateTime::parse(&date, &time::format_description::well_known::Rfc2822)
        .expect("Date is RFC 5322");
    let message_id = got.header("Message-ID").expect("a Message-ID header");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@signoff.test>"),
        "{message_id}"
    );
    assert!(got
        .header("Content-Type")
        .is_some_and(|value| value.starts_with("multipart/alternative")));
    assert!(got.data.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(got.data.contains("Content-Type: text/html; charset=utf-8"));
    assert!(got
        .data
        .contains("Plain text 1: https://app.test/reset#token-1"));
    assert!(got
        .data
        .contains("https://app.test/reset#token-1\">reset</a>"));

    // Sent once: the next pass finds nothing, and the link left the database with the mail.
    assert_eq!(mailer.send_due().await.expect("send").sent, 0);
    let bodies: (String, String) = on_db!(&db, |pool| sqlx::query_as(
        "SELECT text_body, html_body FROM mail_outbox"
    )
    .fetch_one(pool)
    .await
    .expect("row"));
    assert_eq!(bodies, (String::new(), String::new()));
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_rolled_back_change_sends_no_mail() {
    let smtp = Smtp::start();
    let test_db = TestDb::new().await;
    let db = database(&test_db).await;
    let mailer = Mailer::new(db.clone(), &settings(Some(&smtp)));
    enqueue(&db, mailer.from(), &[a_mail(1)], false).await;
    assert_eq!(mailer.send_due().await.expect("send"), Delivered::default());
    assert_eq!(unsent(&db).await, 0);
}

#[tokio::test]
async fn mail_waits_while_the_server_is_down_and_arrives_once_when_it_is_back() {
    // A port that was free a moment ago: the server is "down" there until it is started again.
    let port = {
        let mut probe = Smtp::start();
        let port = probe.port;
        probe.stop();
        port
    };
    let test_db = TestDb::new().await;
    let db = database(&test_db).await;
    let mut with_port = settings(None);
    with_port.smtp = Some(SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).expect("url"));
    let mailer = Mailer::new(db.clone(), &with_port);
    enqueue(&db, mailer.from(), &[a_mail(1), a_mail(2)], true).await;

    let first = mailer.send_due().await.expect("a pass");
    assert_eq!(first, Delivered { sent: 0, failed: 2 });
    assert_eq!(
        unsent(&db).await,
        2,
        "nothing is lost while the server is down"
    );
    // Not due again before its retry delay (a second after the first failure).
    assert_eq!(
        mailer.send_due().await.expect("a pass"),
        Delivered::default()
    );

    let smtp = Smtp::start_with(port, false);
    // The worker, as it runs in the server: it polls and retries on its own.
    let worker = tokio::spawn(mailer.clone().run());
    let received = smtp.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        received.len(),
        2,
        "both mails arrive once the server is back"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    worker.abort();
    let mut subjects: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|mail| mail.header("Subject"))
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Notice 1", "Notice 2"], "each exactly once");
    assert_eq!(unsent(&db).await, 0);
}

#[tokio::test]
async fn a_server_that_refuses_delays_mail_and_loses_none() {
    let mut refusing = Smtp::start_with(0, true);
    let port = refusing.port;
    let test_db = TestDb::new().await;
    let db = database(&test_db).await;
    let mut with_port = settings(None);
    with_port.smtp = Some(SmtpUrl::parse(&refusing.url()).expect("url"));
    let mailer = Mailer::new(db.clone(), &with_port);
    enqueue(&db, mailer.from(), &[a_mail(1)], true).await;
    assert_eq!(mailer.send_due().await.expect("pass").failed, 1);
    let error: Option<String> = on_db!(&db, |pool| sqlx::query_scalar(
        "SELECT last_error FROM mail_outbox"
    )
    .fetch_one(pool)
    .await
    .expect("row"));
    assert!(error.is_some_and(|error| error.contains("451")));
    assert!(refusing.received().is_empty());
    refusing.stop();

    let accepting = Smtp::start_with(port, false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(mailer.send_due().await.expect("pass").sent, 1);
    assert_eq!(accepting.wait_for(1, Duration::from_secs(5)).await.len(), 1);
}

/// Two instances (two pools on one database, as two processes would have), each sending with
/// several workers at once, while 200 mails are due: every mail arrives exactly once.
#[tokio::test]
async fn instances_sharing_the_outbox_never_send_one_mail_twice() {
    const MAILS: usize = 200;
    let smtp = Smtp::start();
    let test_db = TestDb::new().await;
    let first = database(&test_db).await;
    let second = database(&test_db).await;
    let from = lettre::message::Mailbox::from_str(FROM).expect("sender");
    let mails: Vec<Mail> = (0..MAILS).map(a_mail).collect();
    enqueue(&first, &from, &mails, true).await;

    let mut passes = Vec::new();
    for db in [&first, &second] {
        let mailer = Mailer::new(db.clone(), &settings(Some(&smtp)));
        for _ in 0..4 {
            let mailer = mailer.clone();
            passes.push(tokio::spawn(async move { mailer.send_due().await }));
        }
    }
    let mut sent = 0;
    for pass in passes {
        let delivered = pass.await.expect("join").expect("a pass");
        assert_eq!(delivered.failed, 0);
        sent += delivered.sent;
    }
    assert_eq!(sent, MAILS as u64);
    let received = smtp.wait_for(MAILS, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for mail in smtp.received() {
        *per_id
            .entry(mail.header("Message-ID").expect("id"))
            .or_default() += 1;
    }
    assert_eq!(received.len(), MAILS);
    assert_eq!(per_id.len(), MAILS, "every mail arrived");
    assert!(per_id.values().all(|&count| count == 1), "none twice");
}

#[tokio::test]
async fn without_smtp_mail_goes_to_the_log_and_stays_in_the_outbox() {
    let test_db = TestDb::new().await;
    let db = database(&test_db).await;
    let mailer = Mailer::new(db.clone(), &MailSettings::default());
    assert!(!mailer.sends());
    enqueue(&db, mailer.from(), &[a_mail(7)], true).await;
    assert_eq!(mailer.send_due().await.expect("pass").sent, 1);
    // Logged once (not again at the next pass), and the text is still there to read.
    assert_eq!(mailer.send_due().await.expect("pass").sent, 0);
    let text: String = on_db!(&db, |pool| sqlx::query_scalar(
        "SELECT text_body FROM mail_outbox"
    )
    .fetch_one(pool)
    .await
    .expect("row"));
    assert!(text.contains("token-7"));
}
