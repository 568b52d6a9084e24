//! `/webhooks` (admins): where deployments and pauses are announced, and how each delivery went —
//! delivered, waiting to be tried again (with the receiver's last answer), or given up.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::get_webhooks;
use crate::components::error_line::ErrorLine;
use crate::model::{WebhookDelivery, WebhookView};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let view_data = crate::api::load(move || refresh.get(), |_| get_webhooks());
    view! {
        <Title text="Webhooks — Deployer"/>
        <main class="page webhooks-page">
            <div class="page-head">
                <h1>"Webhooks"</h1>
                <p class="muted small">"Deployments started and ended, pauses and resumes, announced where teams are. "
                    "Each announcement is kept until its receiver takes it, then retried with backoff; configured in "
                    <code>"[[webhooks]]"</code>"."</p>
                <button type="button" class="btn" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
            </div>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match view_data.await {
                        Err(e) => view! { <ErrorLine error=e/> }.into_any(),
                        Ok(data) => view! {
                            <section class="card">
                                <h2>"Configured"</h2>
                                <HookTable hooks=data.webhooks/>
                            </section>
                            <section class="card">
                                <h2>"Newest deliveries"</h2>
                                <DeliveryTable deliveries=data.deliveries/>
                            </section>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}

fn all_or(list: &[String], all: &str) -> String {
    if list.is_empty() {
        all.to_owned()
    } else {
        list.join(", ")
    }
}

/// A chat message as plain words: Slack's `*bold*`, `` `code` `` and `<url|label>` undone, and the
/// leading emoji (the chat's, not the page's) left out.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('>') {
            Some(end) => {
                let link = &after[..end];
                out.push_str(link.rsplit('|').next().unwrap_or(link));
                rest = &after[end + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let out: String = out.chars().filter(|c| !matches!(c, '*' | '`')).collect();
    out.trim_start_matches(|c: char| !c.is_ascii() || c == '\u{fe0f}' || c == ' ')
        .to_owned()
}

#[component]
fn HookTable(hooks: Vec<WebhookView>) -> impl IntoView {
    if hooks.is_empty() {
        return view! { <p class="muted">"No webhooks are configured."</p> }.into_any();
    }
    let rows = hooks
        .into_iter()
        .map(|h| {
            view! {
                <tr data-webhook=h.name.clone()>
                    <td class="mono">{h.name.clone()}</td>
                    <td class="mono small">{h.url.clone()}</td>
                    <td class="small">{all_or(&h.projects, "every project")}</td>
                    <td class="small">{all_or(&h.environments, "every environment")}</td>
                    <td class="small">{h.events.join(", ")}</td>
                    <td class="small">{h.format.clone()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table webhooks">
            <thead><tr><th>"Name"</th><th>"Receiver"</th><th>"Projects"</th><th>"Environments"</th><th>"Events"</th><th>"Format"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn DeliveryTable(deliveries: Vec<WebhookDelivery>) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="muted">"Nothing announced yet."</p> }.into_any();
    }
    let rows = deliveries
        .into_iter()
        .map(|d| {
            let (tone, state) = match d.status.as_str() {
                "delivered" => (
                    "complete",
                    format!(
                        "delivered {}",
                        d.delivered_at
                            .map(|t| t.format("%H:%M:%S").to_string())
                            .unwrap_or_default()
                    ),
                ),
                "failed" => ("failed", "given up".to_owned()),
                _ => (
                    "progress",
                    format!("waiting: next try {}", d.next_at.format("%H:%M:%S")),
                ),
            };
            let text = serde_json::from_slice::<serde_json::Value>(d.payload.as_bytes())
                .ok()
                .and_then(|v| v["text"].as_str().map(plain))
                .unwrap_or_default();
            view! {
                <tr data-delivery=d.id data-status=d.status.clone()>
                    <td class="small nowrap" title=d.created_at.to_rfc3339()>{d.created_at.format("%m-%d %H:%M:%S").to_string()}</td>
                    <td class="mono">{d.webhook.clone()}</td>
                    <td>{d.event.clone()}</td>
                    <td class="small">{text}</td>
                    <td><span class=format!("badge tone-{tone}")>{state}</span></td>
                    <td class="small">{d.attempts}</td>
                    <td class="small">{d.last_error.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table deliveries">
            <thead><tr><th>"When (UTC)"</th><th>"Webhook"</th><th>"Event"</th><th>"Message"</th><th>"State"</th><th>"Attempts"</th><th>"Last error"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn a_chat_message_reads_as_plain_words() {
        assert_eq!(
            plain(
                "✅ `web-master-3` of *web* is deployed in *DEV* (by ada) — <http://d/deployments/d-1|d-1>"
            ),
            "web-master-3 of web is deployed in DEV (by ada) — d-1"
        );
        assert_eq!(
            plain("↩️ ada started rolling *web* back"),
            "ada started rolling web back"
        );
        assert_eq!(plain("a < b"), "a < b");
    }
}
