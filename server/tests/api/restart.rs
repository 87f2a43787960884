use crate::helpers::*;

#[tokio::test]
async fn a_restart_keeps_everyone_signed_in() {
    let mut first = spawn_app().await;
    let cookie = first.register("alice").await;
    first.stop().await;

    let second = spawn_app_on(&first.test_db, &[]).await;
    assert_ne!(first.addr, second.addr);
    assert_eq!(second.me(Some(&cookie)).await.as_deref(), Some("alice"));
}
