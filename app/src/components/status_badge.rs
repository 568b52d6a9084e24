//! A stack status as colour and words.

use leptos::prelude::*;

use crate::model::StackCard;

#[component]
pub fn StatusBadge(
    /// The card whose status is shown.
    card: StackCard,
) -> impl IntoView {
    let tone = card.tone();
    let raw = card.status.map(|s| s.as_aws_str());
    view! {
        <span
            class=format!("badge {}", tone.css_class())
            data-status=raw.unwrap_or("NOT_DEPLOYED")
            title=raw.unwrap_or("The stack does not exist in this environment")
        >
            <span class="badge-dot" aria-hidden="true"></span>
            {card.status_label()}
        </span>
    }
}
