//! The Security section of the signed-in page: the user's sessions (each can be signed out),
//! "Sign out everywhere", the ways to sign in (password, linked providers), changing the
//! password, and recent activity. Nothing here reloads, except linking a provider, which is a
//! visit to the provider.

use leptos::{ev::SubmitEvent, prelude::*};

use super::state::{when, Change, StepUp};
use super::{
    change_password, list_sessions, logout_all, recent_activity, revoke_session, state::AuthState,
    validate, wire::EndReason, ActivityEntry, SessionInfo,
};
use crate::error::{AppError, ErrorCode};

/// The prompt of [`StepUp`]: the password (when the account has one), a passkey (where the
/// browser can), or a fresh sign-in with the provider (`/confirm`).
#[component]
fn ConfirmPrompt(step_up: StepUp, no_password: bool) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let done = move |result: Result<(), AppError>| match result {
        Ok(()) => {
            error.set(None);
            step_up.confirmed();
        }
        Err(failure) => error.set(Some(failure.message)),
    };
    let by_password = Action::new(move |password: &String| {
        let password = password.clone();
        async move { done(super::confirm_identity(password).await) }
    });
    let by_passkey = Action::new(move |_: &()| super::passkeys::confirm(done));
    let heading = NodeRef::<leptos::html::H3>::new();
    Effect::new(move |_| {
        if step_up.open.get() {
            if let Some(heading) = heading.get() {
                let _ = heading.focus();
            }
        }
    });
    super::boxed_on_server(view! {
        <Show when=move || step_up.open.get()>
            <div class="card confirm" role="group" aria-labelledby="confirm-heading">
                <h3 id="confirm-heading" tabindex="-1" node_ref=heading>"Confirm it's you"</h3>
                <p>"This change needs a recent proof that it's you. Then it carries on."</p>
                {(!no_password).then(|| view! {
                    <form class="stack" on:submit=move |event: SubmitEvent| {
                        event.prevent_default();
                        by_password.dispatch(password.get_untracked());
                        password.set(String::new());
                    }>
                        <label for="confirm-password">"Your password"</label>
                        <input id="confirm-password" type="password" autocomplete="current-password" bind:value=password />
                        <button type="submit" class="btn primary">"Confirm"</button>
                    </form>
                })}
                <button type="button" class="btn" on:click=move |_| {
                    by_passkey.dispatch(());
                }>"Use a passkey"</button>
                {no_password.then(|| view! { <a class="btn" href="/confirm">"Sign in again with your provider"</a> })}
                <button type="button" class="btn" on:click=move |_| step_up.open.set(false)>"Cancel"</button>
                {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            </div>
        </Show>
    })
}

/// The Security section: the account's sessions (each can be ended), "Sign out everywhere",
/// the password change (or setting a first one: `no_password`), the ways to sign in, and recent
/// activity. Reads `AuthState` from context.
#[component]
pub fn SecurityPanel(
    /// The account has no password yet (made by a provider): offer to set one.
    #[prop(optional)]
    no_password: bool,
) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let step_up = StepUp::new();
    provide_context(step_up);
    let sessions = Resource::new(|| (), |_| list_sessions());
    let activity = Resource::new(|| (), |_| recent_activity());
    let refresh = move || {
        sessions.refetch();
        activity.refetch();
    };

    // If this session was ended elsewhere (revoked, signed out everywhere, password changed),
    // the next call says 401: show the signed-out page rather than a stale one.
    Effect::new(move |_| {
        let ended = |r: Option<Result<_, AppError>>| {
            matches!(
                r,
                Some(Err(AppError {
                    code: ErrorCode::NotSignedIn,
                    ..
                }))
            )
        };
        if ended(sessions.get().map(|r| r.map(|_| ())))
            || ended(activity.get().map(|r| r.map(|_| ())))
        {
            auth.signed_out("Your session has ended. Please sign in again.");
        }
    });

    let revoke = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let result = revoke_session(id).await;
            refresh();
            result
        }
    });
    let everywhere = Action::new(move |_: &()| async move {
        let result = logout_all().await;
        if result.is_ok() {
            auth.ended_here(EndReason::SignedOutEverywhere, "You signed out everywhere.");
        }
        result
    });
    let everywhere_pending = everywhere.pending();

    super::boxed_on_server(view! {
        <section class="card security" aria-labelledby="security-heading">
            <h2 id="security-heading">"Security"</h2>

            <h3 id="sessions-heading">"Your sessions"</h3>
            <Transition fallback=|| view! { <p class="loading">"Loading sessions…"</p> }>
                {move || sessions.get().map(|result| match result {
                    Ok(list) => view! { <SessionList list revoke /> }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                })}
            </Transition>
            {move || revoke.value().get().and_then(Result::err).map(|error| {
                view! { <p class="error" role="alert">"Could not sign out that session: " {error.message}</p> }
            })}
            <form
                on:submit=move |event: SubmitEvent| {
                    event.prevent_default();
                    everywhere.dispatch(());
                }
            >
                <button type="submit" class="btn" disabled=everywhere_pending>
                    {move || if everywhere_pending.get() { "Signing out everywhere…" } else { "Sign out everywhere" }}
                </button>
            </form>
            {move || everywhere.value().get().and_then(Result::err).map(|error| {
                view! { <p class="error" role="alert">"Sign-out failed: " {error.message}</p> }
            })}

            <ConfirmPrompt step_up no_password />

            <super::oidc_ui::SignInMethodsSection on_changed=Callback::new(move |_| refresh()) />

            <super::passkeys::PasskeysSection on_changed=Callback::new(move |_| refresh()) />

            <ChangePasswordForm on_changed=refresh no_password />

            // A page of its own (`signoff::pages`), the same with and without JavaScript: the
            // address is confirmed by a mailed link that opens such pages anyway.
            <h3 id="email-heading">"E-mail address"</h3>
            <p>
                "Password resets and security notices go to your confirmed address. "
                <a href="/account/email">"Add or change your e-mail address"</a>
            </p>

            <h3 id="activity-heading">"Recent activity"</h3>
            <Transition fallback=|| view! { <p class="loading">"Loading activity…"</p> }>
                {move || activity.get().map(|result| match result {
                    Ok(entries) => view! { <ActivityList entries /> }.into_any(),
                    Err(error) => view! { <p class="error" role="alert">{error.message}</p> }.into_any(),
                })}
            </Transition>
        </section>
    })
}

#[component]
fn SessionList(
    list: Vec<SessionInfo>,
    revoke: Action<String, Result<(), AppError>>,
) -> impl IntoView {
    let pending = revoke.pending();
    super::boxed_on_server(view! {
        <ul class="sessions" aria-labelledby="sessions-heading">
            {list
                .into_iter()
                .map(|session| {
                    let device = describe_agent(session.user_agent.as_deref());
                    let label = format!("Sign out {device}, signed in {}", when(session.created_at.as_deref()));
                    let id = session.id.clone();
                    view! {
                        <li class="session" data-session=session.id.clone()>
                            <span class="device">{device.clone()}</span>
                            {session.current.then(|| view! { <span class="badge">"This device"</span> })}
                            <span class="meta">
                                "Signed in "
                                {session.provider.clone().map(|name| format!("with {name} "))}
                                {session.passkey.clone().map(|name| format!("with a passkey ({name}) "))}
                                {when(session.created_at.as_deref())}
                                " · last seen " {when(session.last_seen_at.as_deref())}
                            </span>
                            {(!session.current).then(|| {
                                let id = id.clone();
                                view! {
                                    <button
                                        type="button"
                                        class="btn small"
                                        aria-label=label.clone()
                                        disabled=pending
                                        on:click=move |_| {
                                            revoke.dispatch(id.clone());
                                        }
                                    >
                                        "Sign out"
                                    </button>
                                }
                            })}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    })
}

#[component]
fn ChangePasswordForm(
    on_changed: impl Fn() + Copy + Send + Sync + 'static,
    no_password: bool,
) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let step_up = expect_context::<StepUp>();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    // A first password needs a fresh proof: the prompt, then this carries on.
    let act = step_up.action();
    let pending = act.pending();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let (given, chosen) = (current.get_untracked(), new.get_untracked());
        act.dispatch(Change::new(move || {
            let (given, chosen) = (given.clone(), chosen.clone());
            async move {
                change_password(given, chosen).await?;
                auth.notice.set(Some(if no_password {
                    "Password set. You can sign in with it now.".into()
                } else {
                    "Password changed. Your other sessions were signed out.".into()
                }));
                auth.renewed();
                on_changed();
                Ok(None)
            }
        }));
        current.set(String::new());
        new.set(String::new());
    };
    let (heading, submit, busy) = if no_password {
        ("Set a password", "Set password", "Setting password…")
    } else {
        ("Change password", "Change password", "Changing password…")
    };
    super::boxed_on_server(view! {
        <form class="stack" aria-labelledby="change-password-heading" on:submit=on_submit novalidate>
            <h3 id="change-password-heading">{heading}</h3>
            // An account made by a provider has no current password to give: a recent sign-in
            // is its proof (the server says "Confirm it's you" otherwise).
            {(!no_password).then(|| view! {
                <label for="current-password">"Current password"</label>
                <input id="current-password" type="password" autocomplete="current-password" required bind:value=current />
            })}
            <label for="new-password">"New password"</label>
            <input
                id="new-password"
                type="password"
                autocomplete="new-password"
                aria-describedby="new-password-hint"
                required
                bind:value=new
            />
            <p class="hint" id="new-password-hint">
                {format!("At least {} characters. Your other sessions will be signed out.", validate::PASSWORD_MIN_CHARS)}
            </p>
            <button type="submit" class="btn" disabled=pending>
                {move || if pending.get() { busy } else { submit }}
            </button>
            {move || act.value().get().flatten().and_then(Result::err).map(|error| {
                view! { <p class="error" role="alert">{error.message}</p> }
            })}
        </form>
    })
}

#[component]
fn ActivityList(entries: Vec<ActivityEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="hint">"Nothing yet."</p> }.into_any();
    }
    view! {
        <ul class="activity" aria-labelledby="activity-heading">
            {entries
                .into_iter()
                .map(|entry| {
                    view! {
                        <li>
                            <time datetime=entry.at.clone()>{when(Some(&entry.at))}</time>
                            " " <span class="event">{event_label(&entry.event, entry.detail.as_deref())}</span>
                            {entry.ip.map(|ip| view! { <span class="meta">" from " {ip}</span> })}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

fn event_label(event: &str, provider: Option<&str>) -> String {
    if let Some(name) = provider {
        let label = match event {
            "account_created" => Some(format!("Account created with {name}")),
            "login_succeeded" => Some(format!("Signed in with {name}")),
            "provider_linked" => Some(format!("{name} linked")),
            "provider_unlinked" => Some(format!("{name} unlinked")),
            "passkey_added" => Some(format!("Passkey \u{201c}{name}\u{201d} added")),
            "passkey_removed" => Some(format!("Passkey \u{201c}{name}\u{201d} removed")),
            "provider_logout" => Some(format!("Signed out by {name}")),
            "logout_at_provider" => Some(format!("Signed out, and out of {name}")),
            _ => None,
        };
        if let Some(label) = label {
            return label;
        }
    }
    match event {
        "account_created" => "Account created",
        "login_succeeded" => "Signed in",
        "login_failed" => "Failed sign-in attempt",
        "logout" => "Signed out",
        "session_revoked" => "A session was signed out",
        "logout_everywhere" => "Signed out everywhere",
        "password_changed" => "Password changed",
        "password_reset" => "Password reset by e-mail",
        "email_changed" => "E-mail address changed",
        "provider_logout" => "Signed out by your identity provider",
        _ => "Other event",
    }
    .to_owned()
}

/// A short, human name for a user agent ("Chrome on Linux").
fn describe_agent(agent: Option<&str>) -> String {
    let Some(agent) = agent else {
        return "Unknown device".into();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| *name);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| *name);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) => agent.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_times_read_well() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(describe_agent(Some(chrome)), "Chrome on Linux");
        assert_eq!(describe_agent(None), "Unknown device");
        assert_eq!(
            when(Some("2026-11-25T03:33:23.123Z")),
            "2026-11-25 03:33 UTC"
        );
        assert_eq!(when(None), "unknown");
    }
}
