use reqwest::{header, StatusCode};

use crate::helpers::*;

#[tokio::test]
async fn signed_out_page_offers_both_forms() {
    let app = spawn_app().await;
    let response = app.get("/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response).as_deref(), Some("no-store"));
    assert!(response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(">Sign in</button>"), "{html}");
    assert!(html.contains(">Create account</button>"));
    assert!(html.contains(">Username</label>"));
    assert!(!html.contains("Signed in as"));
}

#[tokio::test]
async fn signed_in_page_is_rendered_on_the_server() {
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let html = app.get("/", Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("Signed in as"), "{html}");
    assert!(html.contains("<strong>alice</strong>"));
    assert!(html.contains(">Sign out</button>"));
    assert!(!html.contains(">Create account</button>"));
}

#[tokio::test]
async fn the_user_is_in_place_in_the_html_not_streamed_in_later() {
    // With out-of-order streaming the signed-in view would arrive in a <template> swapped in by a
    // script, after a "Loading…" placeholder: a flash of the wrong state, and nothing without JS.
    let app = spawn_app().await;
    let cookie = app.register("alice").await;
    let html = app.get("/", Some(&cookie)).await.text().await.unwrap();
    assert!(!html.contains("Loading…"), "{html}");
    assert!(!html.contains("<template"), "{html}");
    let main = html.find("<main").expect("main element");
    let signed_in = html.find("Signed in as").expect("signed in text");
    let main_end = html.find("</main>").expect("main end");
    assert!(main < signed_in && signed_in < main_end, "{html}");
}
