//! What a change set would do, as a table: each resource added, modified, removed or replaced
//! (`Conditional` said as "may be replaced"), the changes that interrupt users or may lose data
//! flagged. The approval and the preview show the same table.

use leptos::prelude::*;

use crate::deployment::ResourceChange;
use crate::model::PreviewChange;

/// One row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeLine {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Option<String>,
    pub interrupts: bool,
}

impl From<ResourceChange> for ChangeLine {
    fn from(c: ResourceChange) -> Self {
        ChangeLine {
            action: c.action,
            logical_id: c.logical_id,
            resource_type: c.resource_type,
            replacement: c.replacement,
            interrupts: c.interrupts,
        }
    }
}

impl From<PreviewChange> for ChangeLine {
    fn from(c: PreviewChange) -> Self {
        ChangeLine {
            action: c.action,
            logical_id: c.logical_id,
            resource_type: c.resource_type,
            replacement: c.replacement,
            interrupts: c.interrupts,
        }
    }
}

/// How many of the changes interrupt users or may lose data.
pub fn interrupting(lines: &[ChangeLine]) -> usize {
    lines.iter().filter(|c| c.interrupts).count()
}

#[component]
pub fn ChangesTable(lines: Vec<ChangeLine>) -> impl IntoView {
    let rows = lines
        .into_iter()
        .map(|c| {
            let replacement = match c.replacement.as_deref() {
                Some("True") => "replaced",
                Some("Conditional") => "may be replaced",
                _ => "",
            };
            view! {
                <tr class=if c.interrupts { "change interrupts" } else { "change" }>
                    <td class="mono small">{c.action}</td>
                    <td class="mono">{c.logical_id}</td>
                    <td class="muted small">{c.resource_type}</td>
                    <td class="small">{replacement}</td>
                    <td class="small">{c.interrupts.then_some("⚠ interrupts users or may lose data")}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="kv changes">
            <thead><tr><th>"Action"</th><th>"Resource"</th><th>"Type"</th><th>"Replacement"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}
