//! The deployer's answers as text for a person: aligned columns, times as the page shows them.

use serde_json::Value;

use crate::text;

fn rows(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// Columns padded to their widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn or_dash(s: String) -> String {
    if s.is_empty() { "-".to_owned() } else { s }
}

/// `2026-11-28 03:40` from an RFC 3339 time (UTC, as the deployer keeps it).
fn when(value: &Value) -> String {
    value
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or("-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// `42s`, `3m07s`, `1h02m`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

pub fn projects(value: &Value) -> String {
    let rows = rows(value)
        .map(|p| {
            let envs: Vec<String> = rows(&p["environments"])
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            vec![text(p, "name"), text(p, "title"), envs.join(" → ")]
        })
        .collect();
    or_empty(
        table(&["PROJECT", "TITLE", "ENVIRONMENTS"], rows),
        "no projects",
    )
}

pub fn builds(value: &Value) -> String {
    let rows = rows(value)
        .map(|b| {
            let state = match b["deployable"].as_bool() {
                Some(true) => "deployable".to_owned(),
                _ => format!("not deployable: {}", text(b, "problem")),
            };
            vec![text(b, "id"), when(&b["created_at"]), state]
        })
        .collect();
    or_empty(table(&["BUILD", "CREATED (UTC)", ""], rows), "no builds")
}

pub fn stacks(value: &Value) -> String {
    let mut out = String::new();
    let rows = rows(value)
        .map(|c| {
            let status = match c["exists"].as_bool() {
                Some(false) => "not created".to_owned(),
                _ => text(c, "status"),
            };
            vec![
                text(c, "environment"),
                text(c, "name"),
                status,
                or_dash(text(c, "build")),
                when(&c["updated_at"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ENV", "STACK", "STATUS", "BUILD", "UPDATED (UTC)"],
        rows,
    ));
    for card in rows_of(value) {
        if let Some(outside) = card["outside"].as_str() {
            out.push_str(&format!(
                "{}: not the deployer's: {outside}\n",
                text(card, "environment")
            ));
        }
        let reason = text(card, "status_reason");
        if !reason.is_empty() && text(card, "status").contains("FAILED") {
            out.push_str(&format!("{}: {reason}\n", text(card, "environment")));
        }
    }
    or_empty(out, "no stacks")
}

fn rows_of(value: &Value) -> Vec<&Value> {
    rows(value).collect()
}

pub fn deployments(value: &Value) -> String {
    let rows = rows(value)
        .map(|d| {
            vec![
                text(d, "id"),
                text(d, "project"),
                text(d, "environment"),
                text(d, "build"),
                text(d, "status"),
                text(d, "actor"),
                when(&d["started_at"]),
            ]
        })
        .collect();
    or_empty(
        table(
            &[
                "ID",
                "PROJECT",
                "ENV",
                "BUILD",
                "STATUS",
                "BY",
                "STARTED (UTC)",
            ],
            rows,
        ),
        "no deployments",
    )
}

/// `deployment d-… of web-master-12 to DEV (web-dev): pending`
pub fn deployment_line(d: &Value) -> String {
    let message = match text(d, "message") {
        m if m.is_empty() => String::new(),
        m => format!(" — {m}"),
    };
    format!(
        "deployment {} of {} to {} ({}): {}{message}",
        text(d, "id"),
        text(d, "build"),
        text(d, "environment"),
        text(d, "stack_name"),
        text(d, "status").replace('_', " "),
    )
}

/// The last line of a followed deployment.
pub fn ended(d: &Value) -> String {
    let took = match (
        d["started_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
        d["finished_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
    ) {
        (Some(start), Some(end)) => format!(" in {}", duration((end - start).num_seconds())),
        _ => String::new(),
    };
    let rolled_back = match d["rolled_back"].as_bool() {
        Some(true) => " (rolled back)",
        _ => "",
    };
    format!("{}{took}{rolled_back}", deployment_line(d))
}

pub fn verdict(v: &Value) -> String {
    let mut out = format!("verdict on {}: {}\n", text(v, "build"), text(v, "verdict"));
    for w in rows(&v["warnings"]) {
        out.push_str(&format!("  {}: {}\n", text(w, "kind"), text(w, "message")));
    }
    out
}

pub fn changes(value: &Value) -> String {
    let rows = rows(value)
        .map(|c| {
            let replacement = match text(c, "replacement").as_str() {
                "True" => "replaced".to_owned(),
                "Conditional" => "may be replaced".to_owned(),
                _ => String::new(),
            };
            let flag = match c["interrupts"].as_bool() {
                Some(true) => "INTERRUPTS USERS OR MAY LOSE DATA".to_owned(),
                _ => String::new(),
            };
            vec![
                text(c, "action"),
                text(c, "logical_id"),
                text(c, "type"),
                replacement,
                flag,
            ]
        })
        .collect();
    or_empty(
        table(&["ACTION", "RESOURCE", "TYPE", "REPLACEMENT", ""], rows),
        "no changes",
    )
}

pub fn pause(p: &Value) -> String {
    if p["paused"].as_bool() != Some(true) {
        return "not paused: deployments run".to_owned();
    }
    let mut out = String::new();
    for pause in rows(&p["pauses"]) {
        let scope = match text(pause, "environment") {
            e if e.is_empty() => "all environments".to_owned(),
            e => e,
        };
        out.push_str(&format!(
            "paused: {scope}, by {} since {} UTC: {}\n",
            text(pause, "actor"),
            when(&pause["since"]),
            text(pause, "reason")
        ));
    }
    if out.is_empty() {
        out = format!(
            "paused by {} since {} UTC: {}",
            text(p, "actor"),
            when(&p["since"]),
            text(p, "reason")
        );
    }
    out
}

pub fn audit(value: &Value) -> String {
    let rows = rows(value)
        .map(|e| {
            let what = [
                text(e, "project"),
                text(e, "environment"),
                text(e, "build"),
                text(e, "deployment_id"),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
            let detail = [text(e, "outcome"), text(e, "reason"), text(e, "detail")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            vec![
                when(&e["at"]),
                text(e, "actor"),
                text(e, "action"),
                what,
                detail,
            ]
        })
        .collect();
    or_empty(
        table(&["AT (UTC)", "BY", "ACTION", "WHAT", ""], rows),
        "no entries",
    )
}

fn or_empty(text: String, empty: &str) -> String {
    if text.trim().is_empty() {
        format!("({empty})")
    } else {
        text
    }
}
