//! A boxed message: errors, empty states and hints.

use leptos::prelude::*;

#[component]
pub fn Notice(
    /// `error`, `info` or `warning`: sets the colour.
    kind: &'static str,
    /// The first line, in bold.
    #[prop(into)]
    title: String,
    children: Children,
) -> impl IntoView {
    let role = if kind == "error" { "alert" } else { "status" };
    view! {
        <div class=format!("notice notice-{kind}") role=role>
            <strong class="notice-title">{title}</strong>
            <div class="notice-body">{children()}</div>
        </div>
    }
}
