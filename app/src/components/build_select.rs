//! The "deploy config" select: the project's builds, newest first, with the deployed one marked.

use leptos::prelude::*;

use crate::model::{Build, BuildList};
use crate::time::ago;

#[component]
pub fn BuildSelect(
    /// The project's builds, newest first.
    list: BuildList,
    /// The build deployed on the stack shown, if any.
    deployed: Option<String>,
) -> impl IntoView {
    let now = list.now;
    let first_deployable = list
        .builds
        .iter()
        .find(|b| b.deployable)
        .map(|b| b.id.clone());
    let count = list.builds.len();
    let options = list
        .builds
        .into_iter()
        .map(|build: Build| {
            let is_deployed = deployed.as_deref() == Some(build.id.as_str());
            let mut label = format!("{} · {}", build.id, ago(now, build.created_at));
            if is_deployed {
                label.push_str(" · deployed");
            }
            if let Some(problem) = &build.problem {
                label.push_str(&format!(" · not deployable: {problem}"));
            }
            let selected = first_deployable.as_deref() == Some(build.id.as_str());
            view! {
                <option
                    value=build.id.clone()
                    disabled=!build.deployable
                    selected=selected
                    title=build.problem.clone().unwrap_or_default()
                    data-deployed=is_deployed.to_string()
                >
                    {label}
                </option>
            }
        })
        .collect_view();
    let summary = match count {
        0 => "no builds yet".to_owned(),
        1 => "1 build".to_owned(),
        n => format!("{n} builds"),
    };
    view! {
        <div class="deploy-row">
            <label class="field">
                <span class="field-label">"Deploy config " <span class="muted">"(" {summary} ")"</span></span>
                <select name="build" class="select" disabled=count == 0>{options}</select>
            </label>
            // Deploying is wired to this button by the deploy engine.
            <button type="button" class="btn btn-primary" disabled=true
                title="Deploying is not available in this version yet">
                "Deploy"
            </button>
        </div>
    }
}
