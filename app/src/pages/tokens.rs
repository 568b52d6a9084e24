//! `/tokens`: API tokens for scripts and CI (admins only). A new token's secret is shown once,
//! right after it is made; the list never shows secrets. Revoking takes effect at once.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{create_token, get_tokens, revoke_token};
use crate::auth::{CreatedToken, Token};
use crate::components::error_line::ErrorLine;

#[component]
pub fn TokensPage() -> impl IntoView {
    let create = Action::new(|(name, role, days): &(String, String, Option<u32>)| {
        create_token(name.clone(), role.clone(), *days)
    });
    let revoke = Action::new(|id: &String| revoke_token(id.clone()));
    let tokens = crate::api::load(
        move || (create.version().get(), revoke.version().get()),
        |_| get_tokens(),
    );
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(String::new());
    // The form is what the person sees: a name typed or a role picked before the page hydrated
    // is taken from it (when the form hydrates, and on submit), never put back to the first state.
    let name_input = NodeRef::<leptos::html::Input>::new();
    let role_select = NodeRef::<leptos::html::Select>::new();
    let expiry_select = NodeRef::<leptos::html::Select>::new();
    Effect::new(move |_| {
        if let Some(input) = name_input.get() {
            name.set(input.value());
        }
        if let Some(select) = role_select.get()
            && !select.value().is_empty()
        {
            role.set(select.value());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = name_input
            .get_untracked()
            .map_or_else(|| name.get_untracked(), |i| i.value());
        let picked = role_select
            .get_untracked()
            .map_or_else(|| role.get_untracked(), |s| s.value());
        // "never", or a number of days.
        let days = expiry_select
            .get_untracked()
            .and_then(|s| s.value().parse::<u32>().ok());
        create.dispatch((typed.trim().to_owned(), picked, days));
    };
    let created = move || create.value().get().and_then(Result::ok);
    let create_error = move || create.value().get().and_then(Result::err);
    let revoke_error = move || revoke.value().get().and_then(Result::err);
    view! {
        <Title text="API tokens — Deployer"/>
        <main class="page">
            <div class="page-head">
                <h1>"API tokens"</h1>
                <p class="muted small">"For scripts and CI: send as " <code>"Authorization: Bearer <token>"</code>
                    ". Each call is audited under the token's name."</p>
            </div>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <ErrorLine error=e/> }.into_any(),
                        Ok(admin) => {
                            if role.get_untracked().is_empty() {
                                let first = admin.roles.iter().find(|r| r.as_str() == "viewer").or(admin.roles.first());
                                role.set(first.cloned().unwrap_or_default());
                            }
                            let options = admin.roles.iter().map(|r| {
                                let r = r.clone();
                                view! { <option value=r.clone() selected=move || role.get() == r>{r.clone()}</option> }
                            }).collect_view();
                            view! {
                                <form class="card token-form" on:submit=on_submit>
                                    <h2>"New token"</h2>
                                    <div class="deploy-row">
                                        <label class="field"><span class="field-label">"Name"</span>
                                            <input class="input" name="name" required=true maxlength="64"
                                                placeholder="e.g. jenkins-dev" node_ref=name_input
                                                on:input=move |ev| name.set(event_target_value(&ev))/>
                                        </label>
                                        <label class="field"><span class="field-label">"Role"</span>
                                            <select class="select" name="role" node_ref=role_select on:change=move |ev| role.set(event_target_value(&ev))>{options}</select>
                                        </label>
                                        <label class="field"><span class="field-label">"Expires"</span>
                                            <select class="select" name="expires" node_ref=expiry_select>
                                                <option value="30">"in 30 days"</option>
                                                <option value="90" selected=true>"in 90 days"</option>
                                                <option value="365">"in a year"</option>
                                                <option value="never">"never (until revoked)"</option>
                                            </select>
                                        </label>
                                        <button type="submit" class="btn btn-primary"
                                            disabled=move || name.get().trim().is_empty() || create.pending().get()>"Create token"</button>
                                    </div>
                                    {move || create_error().map(|e| view! { <ErrorLine error=e/> })}
                                    {move || created().map(|c| view! { <NewSecret created=c/> })}
                                </form>
                                {move || revoke_error().map(|e| view! { <ErrorLine error=e/> })}
                                <TokenTable tokens=admin.tokens.clone() revoke/>
                            }.into_any()
                        }
                    }
                })}
            </Suspense>
        </main>
    }
}

/// The secret of the token just made: shown this once.
#[component]
fn NewSecret(created: CreatedToken) -> impl IntoView {
    view! {
        <div class="secret" role="status">
            <p><strong>{format!("Token {:?} ({}) created.", created.info.name, created.info.role)}</strong>
                " Copy it now: it is not shown again."</p>
            <code class="mono secret-value" data-secret="">{created.token}</code>
        </div>
    }
}

#[component]
fn TokenTable(
    tokens: Vec<Token>,
    revoke: Action<String, Result<Token, crate::error::ErrorBody>>,
) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="muted">"No tokens yet."</p> }.into_any();
    }
    let rows = tokens.into_iter().map(|t| {
        let id = t.id.clone();
        let name = t.name.clone();
        let expired = t.expires_at.is_some_and(|at| at <= chrono::Utc::now());
        let state = match (&t.revoked_at, &t.revoked_by, t.expires_at) {
            (Some(at), by, _) => format!("revoked {} by {}", at.format("%Y-%m-%d %H:%M"), by.clone().unwrap_or_default()),
            (None, _, Some(at)) if expired => format!("expired {}", at.format("%Y-%m-%d %H:%M")),
            (None, _, Some(at)) => format!("active, expires {}", at.format("%Y-%m-%d")),
            (None, _, None) => "active, never expires".to_owned(),
        };
        let active = t.revoked_at.is_none() && !expired;
        let asker = crate::components::dialog::use_asker();
        let on_revoke = move |_| {
            let id = id.clone();
            asker.ask(
                crate::components::dialog::Question::new(
                    format!("Revoke the token {name:?}?"),
                    "Revoke",
                    Callback::new(move |()| {
                        revoke.dispatch(id.clone());
                    }),
                )
                .detail("Scripts using it are refused at once; this cannot be undone.")
                .dangerous(),
            );
        };
        view! {
            <tr data-token=t.name.clone()>
                <td class="mono">{t.name.clone()}</td>
                <td>{t.role.clone()}</td>
                <td class="small">{match t.person.as_deref() {
                    Some(person) if person != t.created_by => format!("{} by {} (acts for {person})", t.created_at.format("%Y-%m-%d %H:%M"), t.created_by),
                    _ => format!("{} by {}", t.created_at.format("%Y-%m-%d %H:%M"), t.created_by),
                }}</td>
                <td class="small">{t.last_used_at.map(|u| u.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".to_owned())}</td>
                <td class="small">{state}</td>
                <td>{active.then(|| view! {
                    <button type="button" class="btn btn-quiet" aria-label=format!("Revoke {}", t.name) on:click=on_revoke>"Revoke"</button>
                })}</td>
            </tr>
        }
    }).collect_view();
    view! {
        <table class="table tokens">
            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }.into_any()
}
