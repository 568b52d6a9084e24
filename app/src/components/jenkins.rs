//! Top right: the Jenkins builds in progress ("handy if you're waiting for one to finish"), as
//! the server's one poller sees them, pushed live; each with a progress bar on the page's own
//! clock (honest past the estimate), a link to Jenkins, and the just-finished ones with their
//! result until they fade out.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::api::get_jenkins_builds;
use crate::components::progress::ticking_clock;
use crate::jenkins::{JenkinsBuild, JenkinsBuilds, JenkinsJobFailure, JenkinsState};
use crate::live::Live;

#[component]
pub fn JenkinsPanel() -> impl IntoView {
    let live = expect_context::<Live>();
    let at_load = crate::api::load(|| (), |()| get_jenkins_builds());
    let panel: Signal<Option<JenkinsBuilds>> = Signal::derive(move || {
        live.jenkins
            .get()
            .or_else(|| at_load.get().and_then(Result::ok))
    });
    let clock = ticking_clock();
    let label = move || {
        panel.get().map(|p| {
            let running = p.running.iter().filter(|b| b.building).count();
            let label = match p.state {
                JenkinsState::NotConfigured => "Builds".to_owned(),
                JenkinsState::Unreachable => "Builds · Jenkins unreachable".to_owned(),
                JenkinsState::Unauthorized => "Builds · Jenkins refused".to_owned(),
                _ if running == 0 => "Builds · idle".to_owned(),
                _ => format!("Builds · {running} running"),
            };
            // Some jobs answer and some do not: the builds shown are not all of them.
            match (p.state, p.failing.len()) {
                (JenkinsState::Ok, 1) => format!("{label} · 1 job failing"),
                (JenkinsState::Ok, n) if n > 1 => format!("{label} · {n} jobs failing"),
                _ => label,
            }
        })
    };
    let state = move || {
        panel
            .get()
            .map(|p| format!("{:?}", p.state).to_lowercase())
            .unwrap_or_default()
    };
    // Only the panel's contents follow the pushes: the <details> itself stays, open or closed as
    // the person left it.
    let body = move || {
        panel.get().map(|p| {
            // The server's clock at the moment this arrived, so elapsed times do not depend on
            // the browser's clock being right.
            let skew = p.now - Utc::now();
            view! { <PanelBody panel=p clock skew/> }
        })
    };
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let _ = at_load.await;
                view! {
                    <details class="jenkins" data-state=state>
                        <summary class="topbar-link jenkins-summary">{label}</summary>
                        <div class="jenkins-panel" role="region" aria-label="Jenkins builds">{body}</div>
                    </details>
                }
            })}
        </Suspense>
    }
}

#[component]
fn PanelBody(
    panel: JenkinsBuilds,
    clock: RwSignal<DateTime<Utc>>,
    skew: chrono::Duration,
) -> impl IntoView {
    let status = match panel.state {
        JenkinsState::NotConfigured => Some(("muted", "Jenkins not configured".to_owned())),
        JenkinsState::Starting => Some(("muted", "Asking Jenkins…".to_owned())),
        JenkinsState::Unreachable | JenkinsState::Unauthorized => Some((
            "jenkins-problem",
            panel
                .message
                .clone()
                .unwrap_or_else(|| "Jenkins did not answer".to_owned()),
        )),
        JenkinsState::Ok => None,
    };
    // Each job that did not answer, named with its reason — unless the status line above already
    // says the same of the only job.
    let failing = match (panel.state, panel.failing.len()) {
        (JenkinsState::Unreachable | JenkinsState::Unauthorized, 1) => Vec::new(),
        _ => panel.failing.clone(),
    };
    let configured = panel.state != JenkinsState::NotConfigured;
    let nothing = configured && panel.running.is_empty() && panel.finished.is_empty();
    view! {
        {status.map(|(class, text)| view! { <p class=format!("small {class}") role="status">{text}</p> })}
        {(!failing.is_empty()).then(|| view! {
            <ul class="jenkins-failing" aria-label="Jenkins jobs not answering">
                {failing.into_iter().map(|f| view! { <FailingJob failure=f/> }).collect_view()}
            </ul>
        })}
        {nothing.then(|| view! { <p class="small muted">"No builds running."</p> })}
        <ul class="jenkins-builds">
            {panel.running.into_iter().map(|b| view! { <RunningBuild job=b clock skew/> }).collect_view()}
            {panel.finished.into_iter().map(|b| view! { <FinishedBuild job=b/> }).collect_view()}
        </ul>
        {panel.url.map(|url| view! { <p class="small"><a href=url target="_blank" rel="noopener">"Open Jenkins"</a></p> })}
    }
}

/// A configured job whose last poll failed: which job, for which project, and why.
#[component]
fn FailingJob(
    /// The job and its reason, as the poller last saw it.
    failure: JenkinsJobFailure,
) -> impl IntoView {
    view! {
        <li class="small jenkins-problem" data-job=failure.job.clone()>
            <span class="mono">{format!("{} ({})", failure.job, failure.project)}</span>
            ": " {failure.message}
        </li>
    }
}

fn build_id(b: &JenkinsBuild) -> String {
    format!("{}-{}-{}", b.project, b.branch, b.number)
}

fn seconds(ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

#[component]
fn RunningBuild(
    job: JenkinsBuild,
    clock: RwSignal<DateTime<Utc>>,
    skew: chrono::Duration,
) -> impl IntoView {
    let build = job;
    let started = build.started_at;
    let estimate = build.estimated_duration_ms as i64;
    let queued = build.queued;
    let elapsed = move || (clock.get() + skew - started).num_milliseconds().max(0);
    let percent = move || {
        if queued || estimate == 0 {
            0
        } else {
            (elapsed() * 100 / estimate).min(100)
        }
    };
    let words = move || {
        let e = elapsed();
        if queued {
            format!("queued for {}", seconds(e))
        } else if estimate == 0 {
            format!("{} (no estimate yet)", seconds(e))
        } else if e > estimate {
            format!(
                "{} — over the estimate of {} by {}",
                seconds(e),
                seconds(estimate),
                seconds(e - estimate)
            )
        } else {
            format!("{} of about {}", seconds(e), seconds(estimate))
        }
    };
    let over = move || !queued && estimate > 0 && elapsed() > estimate;
    view! {
        <li class="jenkins-build" data-build=build_id(&build) data-phase=if queued { "queued" } else { "running" }>
            <div class="jenkins-build-head">
                <span class="mono">{format!("{} · {} #{}", build.project, build.branch, build.number)}</span>
                <a class="small" href=build.url.clone() target="_blank" rel="noopener">"Jenkins"</a>
            </div>
            <div class="bar" role="progressbar" aria-label=format!("{} progress", build_id(&build))
                aria-valuemin="0" aria-valuemax="100" aria-valuenow=move || percent().to_string()>
                <div class=move || if over() { "bar-fill tone-rolledback" } else { "bar-fill tone-progress" }
                    style=move || format!("width: {}%", percent())></div>
            </div>
            <p class="small muted jenkins-time">{words}</p>
        </li>
    }
}

#[component]
fn FinishedBuild(job: JenkinsBuild) -> impl IntoView {
    let build = job;
    let result = build.result.clone().unwrap_or_default();
    let tone = match result.as_str() {
        "SUCCESS" => "tone-complete",
        "UNSTABLE" | "ABORTED" | "NOT_BUILT" => "tone-rolledback",
        _ => "tone-failed",
    };
    let words = match result.as_str() {
        "SUCCESS" => "succeeded",
        "FAILURE" => "failed",
        "UNSTABLE" => "unstable",
        "ABORTED" => "aborted",
        _ => "finished",
    };
    view! {
        <li class="jenkins-build jenkins-finished" data-build=build_id(&build) data-phase="finished" data-result=result.clone()>
            <div class="jenkins-build-head">
                <span class="mono">{format!("{} · {} #{}", build.project, build.branch, build.number)}</span>
                <span class=format!("badge {tone}")>{words}</span>
            </div>
            <p class="small muted">
                {build.duration_ms.map(|d| format!("took {}", seconds(d as i64)))}
                " · " <a href=build.url.clone() target="_blank" rel="noopener">"Jenkins"</a>
            </p>
        </li>
    }
}
