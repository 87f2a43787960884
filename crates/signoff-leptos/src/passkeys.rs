//! Passkeys in the page: "Sign in with a passkey" (a button, and the browser's autofill on the
//! username field), "Create an account with a passkey", the Passkeys list of the Security
//! section (add, rename, remove), and confirming who you are with one.
//!
//! The ceremonies are the server's JSON calls (`signoff::passkeys`, `/api/passkeys/…`); the
//! browser side is `navigator.credentials` with the WebAuthn JSON forms
//! (`PublicKeyCredential.parse…OptionsFromJSON`, `toJSON()`), reached through `js_sys`: no
//! WebAuthn crate in the bundle.

use leptos::{ev::SubmitEvent, prelude::*};

use super::{
    state::{AuthState, Change},
    wire::PasskeyInfo,
    User,
};
use crate::error::AppError;

/// `GET /api/passkeys`: the signed-in account's passkeys, oldest first. A server function, so
/// that the Security section renders them on the server and hydrates.
#[server(prefix = "/api", endpoint = "passkeys", input = leptos::server_fn::codec::GetUrl)]
pub async fn list_passkeys() -> Result<Vec<PasskeyInfo>, AppError> {
    let auth = super::ssr::auth_session().await?;
    let user = super::ssr::require_user(&auth)?;
    let state = super::ssr::signoff()?;
    super::ssr::passkeys::list(&state.db, user.id).await
}

/// Whether this browser can use passkeys here (WebAuthn with its JSON forms). False while the
/// page is rendered on the server, so the controls appear only where they can work.
fn supported() -> bool {
    #[cfg(feature = "browser")]
    return js::supported();
    #[cfg(not(feature = "browser"))]
    false
}

/// The browser's futures (fetch, WebAuthn's promises) are not `Send`; Leptos' actions want them to
/// be. The page has one thread, so they are wrapped. On the server the futures are plain (and
/// never run: the controls do nothing until hydrated). Nothing here keeps thread-bound values in
/// the reactive graph: the server renders these components on many threads.
#[cfg(feature = "browser")]
fn sendable<F: std::future::Future>(future: F) -> send_wrapper::SendWrapper<F> {
    send_wrapper::SendWrapper::new(future)
}

#[cfg(not(feature = "browser"))]
fn sendable<F: std::future::Future + Send>(future: F) -> F {
    future
}

/// A JSON call to the server: the answer's text, or its JSON error.
async fn call(path: &str, body: String) -> Result<String, AppError> {
    #[cfg(feature = "browser")]
    {
        use gloo_net::http::Request;
        let response = Request::post(path)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body)
            .map_err(|_| AppError::network())?
            .send()
            .await
            .map_err(|_| AppError::network())?;
        let text = response.text().await.map_err(|_| AppError::network())?;
        if response.ok() {
            return Ok(text);
        }
        Err(serde_json::from_str(&text).unwrap_or_else(|_| AppError::network()))
    }
    #[cfg(not(feature = "browser"))]
    {
        let _ = (path, body);
        Err(AppError::network())
    }
}

fn parsed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, AppError> {
    #[cfg(feature = "browser")]
    return serde_json::from_str(text).map_err(|_| AppError::network());
    #[cfg(not(feature = "browser"))]
    {
        let _ = text;
        Err(AppError::network())
    }
}

/// A JSON string of `text` (the bodies here are a few fields: no serializer needed).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"name": …, "credential": <the credential's JSON, already text>}`.
fn with_credential(name: Option<&str>, credential: &str) -> String {
    let name = name.map_or(String::new(), |name| {
        format!("\"name\":{},", json_string(name))
    });
    format!("{{{name}\"credential\":{credential}}}")
}

/// Signs in with a passkey: a modal request (the button) or the username field's autofill
/// (`conditional`; `js::abort_autofill` ends it when the page moves on). `Ok(None)`: the autofill
/// request was aborted; nothing to say.
async fn sign_in(conditional: bool) -> Result<Option<User>, AppError> {
    let options = call("/api/passkeys/signin/start", "{}".into()).await?;
    let credential = match js::get(&options, conditional).await {
        Ok(credential) => credential,
        Err(js::Failure::Aborted) => return Ok(None),
        // Autofill that did not happen is not an error to show: the person typed instead.
        Err(_) if conditional => return Ok(None),
        Err(failure) => return Err(failure.into()),
    };
    let user = call(
        "/api/passkeys/signin/finish",
        with_credential(None, &credential),
    )
    .await?;
    parsed(&user).map(Some)
}

/// Offers the site's passkeys in the sign-in form's username field (`autocomplete="username
/// webauthn"`, conditional mediation) once the field has focus, where the browser can. Not at
/// page load: the ceremony's state needs a session on the server, and a signed-out page must not
/// get a session cookie before the person does anything (right after a sign-out least of all).
pub(crate) fn offer_autofill(auth: AuthState) {
    #[cfg(feature = "browser")]
    if js::supported() && js::claim_autofill() {
        leptos::task::spawn_local(async move {
            if js::autofill_available().await {
                match sign_in(true).await {
                    Ok(Some(user)) => auth.signed_in(user),
                    Ok(None) => {}
                    Err(failure) => auth.notice.set(Some(failure.message)),
                }
            }
            js::autofill_done();
        });
    }
    #[cfg(not(feature = "browser"))]
    let _ = auth;
}

/// "Sign in with a passkey" (no name typed), where the browser can use passkeys.
#[component]
pub fn PasskeySignIn() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let error = RwSignal::new(None::<String>);
    let shown = RwSignal::new(false);
    let finish = move |result: Result<Option<User>, AppError>| match result {
        Ok(Some(user)) => auth.signed_in(user),
        Ok(None) => {}
        Err(failure) => error.set(Some(failure.message)),
    };
    Effect::new(move |_| shown.set(supported()));
    // The sign-in form is going away: its autofill request with it.
    on_cleanup(js::abort_autofill);
    let button = Action::new(move |_: &()| {
        sendable(async move {
            // One WebAuthn request at a time: the autofill's gives way to the button's.
            js::abort_autofill();
            error.set(None);
            finish(sign_in(false).await);
        })
    });
    let pending = button.pending();
    super::boxed_on_server(view! {
        <Show when=move || shown.get()>
            <div class="card passkey-sign-in">
                <button type="button" class="btn" disabled=pending on:click=move |_| {
                    button.dispatch(());
                }>
                    {move || if pending.get() { "Waiting for your passkey…" } else { "Sign in with a passkey" }}
                </button>
                {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            </div>
        </Show>
    })
}

/// Creates an account whose only way in is a new passkey, named `username`, and signs it in.
pub(crate) fn create_account(
    username: String,
    auth: AuthState,
) -> impl std::future::Future<Output = Result<(), AppError>> + Send {
    sendable(async move {
        let body = format!("{{\"username\":{}}}", json_string(&username));
        let options = call("/api/passkeys/create/start", body).await?;
        let credential = js::create(&options).await.map_err(AppError::from)?;
        let user = call(
            "/api/passkeys/create/finish",
            with_credential(Some(""), &credential),
        )
        .await?;
        auth.signed_in(parsed(&user)?);
        Ok(())
    })
}

/// Whether passkeys can be made in this browser (for the "Create an account with a passkey"
/// button; hidden otherwise).
pub(crate) fn can_create() -> Signal<bool> {
    let shown = RwSignal::new(false);
    Effect::new(move |_| shown.set(supported()));
    shown.into()
}

/// Confirms who you are with one of the account's passkeys (`stepup`), and says how it went.
pub(crate) fn confirm(
    done: impl Fn(Result<(), AppError>) + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send {
    sendable(async move {
        let result = async {
            let options = call("/api/passkeys/confirm/start", "{}".into()).await?;
            let credential = js::get(&options, false).await.map_err(AppError::from)?;
            call(
                "/api/passkeys/confirm/finish",
                with_credential(None, &credential),
            )
            .await
            .map(|_| ())
        }
        .await;
        done(result);
    })
}

/// What the Passkeys list asks of the server.
#[derive(Clone)]
enum Edit {
    Add(String),
    Rename(i64, String),
    Remove(i64),
}

async fn edit(edit: Edit) -> Result<&'static str, AppError> {
    match edit {
        Edit::Add(name) => {
            let options = call("/api/passkeys/add/start", "{}".into()).await?;
            let credential = js::create(&options).await.map_err(AppError::from)?;
            call(
                "/api/passkeys/add/finish",
                with_credential(Some(&name), &credential),
            )
            .await
            .map(|_| "Passkey added. You can sign in with it now.")
        }
        Edit::Rename(id, name) => call(
            "/api/passkeys/rename",
            format!("{{\"id\":{id},\"name\":{}}}", json_string(&name)),
        )
        .await
        .map(|_| "Passkey renamed."),
        Edit::Remove(id) => call("/api/passkeys/remove", format!("{{\"id\":{id}}}"))
            .await
            .map(|_| "Passkey removed. Sessions signed in with it were signed out."),
    }
}

/// The Security section's Passkeys: the list (name, kind, created, last used), rename, remove,
/// and "Add a passkey". Adding and removing need a fresh proof: the server's
/// `reauthentication_required` opens the "Confirm it's you" prompt, which then carries on.
#[component]
pub fn PasskeysSection(
    /// Called after a change (the sessions list may have changed).
    on_changed: Callback<()>,
) -> impl IntoView {
    let step_up = expect_context::<super::state::StepUp>();
    let passkeys = Resource::new(|| (), |_| list_passkeys());
    let new_name = RwSignal::new(String::new());
    let act = step_up.action();
    // Each edit carried on after "Confirm it's you" when asked.
    let run = Callback::new(move |what: Edit| {
        act.dispatch(Change::new(move || {
            let what = what.clone();
            sendable(async move {
                let done = edit(what).await?;
                new_name.set(String::new());
                passkeys.refetch();
                on_changed.run(());
                Ok(Some(done.to_owned()))
            })
        }));
    });
    let pending = act.pending();
    let can_add = RwSignal::new(false);
    Effect::new(move |_| can_add.set(supported()));

    super::boxed_on_server(view! {
        <h3 id="passkeys-heading">"Passkeys"</h3>
        <p class="hint">"Sign in with your device's screen lock, fingerprint or face instead of a password."</p>
        <Transition fallback=|| view! { <p class="loading">"Loading passkeys…"</p> }>
            {move || passkeys.get().map(|result| match result {
                Ok(list) => view! {
                    <ul class="passkeys" aria-labelledby="passkeys-heading">
                        {list.into_iter().map(|passkey| view! { <PasskeyItem passkey run /> }).collect_view()}
                    </ul>
                }.into_any(),
                Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
            })}
        </Transition>
        <Show when=move || can_add.get()>
            <form class="stack" aria-label="Add a passkey" on:submit=move |event: SubmitEvent| {
                event.prevent_default();
                run.run(Edit::Add(new_name.get_untracked()));
            }>
                <label for="new-passkey-name">"Name for a new passkey"</label>
                <input id="new-passkey-name" type="text" maxlength="64" placeholder="e.g. Work laptop" bind:value=new_name />
                <button type="submit" class="btn" disabled=pending>"Add a passkey"</button>
            </form>
        </Show>
        {move || act.value().get().flatten().and_then(|answer| match answer {
            Ok(done) => done.map(|done| view! { <p class="notice" role="status">{done}</p> }.into_any()),
            Err(error) => Some(view! { <p class="error" role="alert">{error.message}</p> }.into_any()),
        })}
    })
}

#[component]
fn PasskeyItem(passkey: PasskeyInfo, run: Callback<Edit>) -> impl IntoView {
    let id = passkey.id;
    let name = RwSignal::new(passkey.name.clone());
    let input_id = format!("passkey-{id}-name");
    let when = |at: Option<&str>| super::state::when(at);
    super::boxed_on_server(view! {
        <li class="passkey" data-passkey=id>
            <form class="inline" on:submit=move |event: SubmitEvent| {
                event.prevent_default();
                run.run(Edit::Rename(id, name.get_untracked()));
            }>
                <label class="visually-hidden" for=input_id.clone()>"Name of this passkey"</label>
                <input id=input_id type="text" maxlength="64" bind:value=name />
                <button type="submit" class="btn small">"Rename"</button>
                <button
                    type="button"
                    class="btn small"
                    aria-label=format!("Remove passkey {}", passkey.name)
                    on:click=move |_| {
                        run.run(Edit::Remove(id));
                    }
                >
                    "Remove"
                </button>
            </form>
            <span class="meta">
                {passkey.kind.map(|kind| format!("{kind} · "))}
                "added " {when(Some(&passkey.created_at))}
                " · last used " {passkey.last_used_at.as_deref().map_or("never".into(), |at| when(Some(at)))}
            </span>
        </li>
    })
}

/// The browser's WebAuthn, through `js_sys` (no bindings generated for it: a few reflective
/// calls are far smaller than the typed API). On the server these are never reached.
mod js {
    use crate::error::AppError;

    /// Why a WebAuthn request did not give a credential.
    pub enum Failure {
        /// The page aborted it (the autofill gave way to the button).
        Aborted,
        /// The person cancelled, or it timed out (`NotAllowedError`).
        Cancelled,
        /// The authenticator holds a passkey of this account already (`InvalidStateError`).
        Exists,
        /// Anything else: WebAuthn not usable here.
        Unusable,
    }

    impl From<Failure> for AppError {
        fn from(failure: Failure) -> Self {
            AppError::invalid_input(match failure {
                Failure::Aborted | Failure::Cancelled => {
                    "The passkey request was cancelled or timed out. Please try again."
                }
                Failure::Exists => "This device already has a passkey for this account.",
                Failure::Unusable => "This browser could not use a passkey here.",
            })
        }
    }

    #[cfg(feature = "browser")]
    pub use browser::*;

    #[cfg(feature = "browser")]
    mod browser {
        use js_sys::{Function, Object, Promise, Reflect, JSON};
        use wasm_bindgen::{JsCast, JsValue};
        use wasm_bindgen_futures::JsFuture;

        use super::Failure;

        fn get(target: &JsValue, key: &str) -> Result<JsValue, JsValue> {
            Reflect::get(target, &JsValue::from_str(key))
        }

        /// Calls `target[method](...args)`.
        fn call(target: &JsValue, method: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
            let function: Function = get(target, method)?.dyn_into()?;
            let args: js_sys::Array = args.iter().copied().collect();
            function.apply(target, &args)
        }

        fn credential_class() -> Result<JsValue, JsValue> {
            get(&js_sys::global(), "PublicKeyCredential")
        }

        /// WebAuthn with its JSON forms, on a page whose host is a name: WebAuthn refuses IP
        /// addresses (`http://127.0.0.1:3000` in development shows no passkey controls).
        pub fn supported() -> bool {
            let host = get(&js_sys::global(), "location")
                .and_then(|location| get(&location, "hostname"))
                .ok()
                .and_then(|host| host.as_string())
                .unwrap_or_default();
            let ip = host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok();
            !ip && credential_class()
                .and_then(|class| get(&class, "parseRequestOptionsFromJSON"))
                .is_ok_and(|parse| parse.is_function())
        }

        pub async fn autofill_available() -> bool {
            let Ok(class) = credential_class() else {
                return false;
            };
            let Ok(promise) = call(&class, "isConditionalMediationAvailable", &[]) else {
                return false;
            };
            match promise.dyn_into::<Promise>() {
                Ok(promise) => JsFuture::from(promise)
                    .await
                    .is_ok_and(|available| available.is_truthy()),
                Err(_) => false,
            }
        }

        thread_local! {
            /// The `AbortController` of the pending autofill request, if any.
            static AUTOFILL: std::cell::RefCell<Option<JsValue>> =
                const { std::cell::RefCell::new(None) };
            /// Whether an autofill request is being made or pending (one at a time).
            static CLAIMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }

        /// True for the caller that may start the autofill request (none is under way).
        pub fn claim_autofill() -> bool {
            !CLAIMED.with(|claimed| claimed.replace(true))
        }

        /// The autofill request ended (a credential, an error, or aborted).
        pub fn autofill_done() {
            CLAIMED.with(|claimed| claimed.set(false));
        }

        /// A new `AbortController` for the autofill request (aborting any other), and its
        /// signal.
        fn autofill_signal() -> Result<JsValue, JsValue> {
            abort_autofill();
            let class: Function = get(&js_sys::global(), "AbortController")?.dyn_into()?;
            let controller = Reflect::construct(&class, &js_sys::Array::new())?;
            let signal = get(&controller, "signal")?;
            AUTOFILL.with(|slot| *slot.borrow_mut() = Some(controller));
            Ok(signal)
        }

        /// Ends the pending autofill request, if there is one.
        pub fn abort_autofill() {
            if let Some(controller) = AUTOFILL.with(|slot| slot.borrow_mut().take()) {
                let _ = call(&controller, "abort", &[]);
            }
        }

        fn failure(error: JsValue) -> Failure {
            let name = get(&error, "name").ok().and_then(|name| name.as_string());
            match name.as_deref() {
                Some("AbortError") => Failure::Aborted,
                Some("NotAllowedError") => Failure::Cancelled,
                Some("InvalidStateError") => Failure::Exists,
                _ => Failure::Unusable,
            }
        }

        /// `navigator.credentials[method]({publicKey: PublicKeyCredential[parse](options.publicKey), …extra})`,
        /// the credential's `toJSON()`, as text.
        async fn ceremony(
            options: &str,
            parse: &str,
            method: &str,
            extra: &[(&str, JsValue)],
        ) -> Result<String, JsValue> {
            let options = JSON::parse(options)?;
            let class = credential_class()?;
            let public = call(&class, parse, &[&get(&options, "publicKey")?])?;
            let request = Object::new();
            Reflect::set(&request, &"publicKey".into(), &public)?;
            for (key, value) in extra {
                Reflect::set(&request, &JsValue::from_str(key), value)?;
            }
            let credentials = get(&get(&js_sys::global(), "navigator")?, "credentials")?;
            let promise: Promise = call(&credentials, method, &[&request])?.dyn_into()?;
            let credential = JsFuture::from(promise).await?;
            let json = call(&credential, "toJSON", &[])?;
            JSON::stringify(&json)?
                .as_string()
                .ok_or_else(|| JsValue::from_str("no JSON"))
        }

        pub async fn create(options: &str) -> Result<String, Failure> {
            ceremony(options, "parseCreationOptionsFromJSON", "create", &[])
                .await
                .map_err(failure)
        }

        pub async fn get_credential(options: &str, conditional: bool) -> Result<String, Failure> {
            let extra: Vec<(&str, JsValue)> = match conditional {
                true => vec![
                    ("mediation", JsValue::from_str("conditional")),
                    ("signal", autofill_signal().map_err(failure)?),
                ],
                false => Vec::new(),
            };
            ceremony(options, "parseRequestOptionsFromJSON", "get", &extra)
                .await
                .map_err(failure)
        }
    }

    #[cfg(feature = "browser")]
    pub use browser::get_credential as get;

    /// On the server nothing here is reached; these keep the components' code the same.
    #[cfg(not(feature = "browser"))]
    mod server {
        use super::Failure;

        pub fn abort_autofill() {}

        pub async fn create(_: &str) -> Result<String, Failure> {
            Err(Failure::Unusable)
        }

        pub async fn get(_: &str, _: bool) -> Result<String, Failure> {
            Err(Failure::Unusable)
        }
    }

    #[cfg(not(feature = "browser"))]
    pub use server::*;
}
