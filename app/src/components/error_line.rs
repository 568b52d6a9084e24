//! An action's refusal, saying which kind of "no" it is.

use leptos::prelude::*;

/// Why an action was not carried out, titled by its kind: paused (by whom, why), busy (with a
/// link to the active deployment), refused, not found, invalid, needs confirmation.
#[component]
pub fn ErrorLine(error: crate::error::ErrorBody) -> impl IntoView {
    let active = error.deployment_id.clone().map(|id| {
        view! { " " <a href=format!("/deployments/{id}")>"See " {id.clone()}</a> }
    });
    view! {
        <p class="notice notice-error" role="alert" data-code=error.code.as_str()>
            <strong>{error.title()}</strong> " — " {error.message.clone()} {active}
        </p>
    }
}
