//! The fleet pages: agents, scalers and diagnostics, one section per orchestrator, from what
//! each orchestrator answered just now (an offline one shows why there is nothing). The agents
//! page lists the jobs waiting for an agent with why each waits; the scalers page those a
//! scaler could serve.

use serde_json::Value;

use super::{Viewer, escape, layout};
use crate::http::OrchestratorReport;

fn sections(reports: &[OrchestratorReport], body: impl Fn(&Value) -> String) -> String {
    if reports.is_empty() {
        return r#"<p class="empty">No orchestrator connected</p>"#.to_string();
    }
    reports
        .iter()
        .map(|report| {
            let state = if report.online { "online" } else { "offline" };
            let content = match (&report.data, &report.error) {
                (Some(data), _) => body(data),
                (None, Some(error)) => format!(r#"<p class="log-message">{}</p>"#, escape(error)),
                (None, None) => String::new(),
            };
            format!(
                r#"<section class="orchestrator"><h2>Orchestrator <code>{}</code> <span class="status status-{state}">{state}</span></h2>{content}</section>"#,
                escape(&report.instance_id)
            )
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

fn labels(value: &Value) -> String {
    value
        .as_array()
        .map(|labels| labels.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The queued jobs an orchestrator reports no agent took (`kinds`: only those whose reason
/// is one of these; all when empty), each linking to its run, with why it waits.
fn waiting_jobs(data: &Value, kinds: &[&str]) -> String {
    // An orchestrator older than the list does not say: nothing is claimed either way.
    let Some(waiting) = data["waiting"].as_array() else {
        return String::new();
    };
    let rows: String = waiting
        .iter()
        .filter(|job| {
            kinds.is_empty()
                || kinds.contains(&job["reason"]["kind"].as_str().unwrap_or_default())
                    && job["reason"]["scaler"]["kind"] != "noScalers"
        })
        .map(|job| {
            let run_id = job["runId"].as_str().unwrap_or_default();
            let job_id = job["jobId"].as_str().unwrap_or_default();
            format!(
                r#"<tr data-waiting-job="{job_id}"><td><a href="/runs/{run_id}?job={job_id}">{name}</a></td><td>{workflow}</td><td><time data-ms="{since}"></time></td><td class="why">{why}</td></tr>"#,
                run_id = escape(run_id),
                job_id = escape(job_id),
                name = text(&job["jobName"]),
                workflow = text(&job["workflowName"]),
                since = job["enqueuedAt"].as_i64().unwrap_or(0),
                why = text(&job["explanation"]),
            )
        })
        .collect();
    if rows.is_empty() {
        return r#"<p class="empty waiting">No job is waiting for an agent</p>"#.to_string();
    }
    format!(
        r#"<h3>Waiting jobs</h3><table class="waiting"><thead><tr><th>Job</th><th>Workflow</th><th>Queued</th><th>Why it waits</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

pub fn agents_page(reports: &[OrchestratorReport], viewer: &Viewer) -> String {
    let body = sections(reports, |data| {
        let rows: String = data["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|agent| {
                let connected = agent["connected"].as_bool().unwrap_or(false);
                format!(
                    r#"<tr><td><code>{id}</code></td><td><span class="status status-{state}">{state}</span></td><td>{busy}</td><td>{labels}</td><td>{host}</td><td>{version}</td><td><time data-ms="{seen}"></time></td></tr>"#,
                    id = text(&agent["agentId"]),
                    state = if connected { "connected" } else { "disconnected" },
                    busy = text(&agent["busyJobId"]),
                    labels = labels(&agent["labels"]),
                    host = text(&agent["hostname"]),
                    version = text(&agent["version"]),
                    seen = agent["lastSeenAt"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        format!(
            r#"<table class="agents"><thead><tr><th>Agent</th><th>State</th><th>Running job</th><th>Labels</th><th>Host</th><th>Version</th><th>Last seen</th></tr></thead><tbody>{rows}</tbody></table>{waiting}"#,
            waiting = waiting_jobs(data, &[]),
        )
    });
    layout("Agents", Some(viewer), &format!("<h1>Agents</h1>{body}"))
}

pub fn scalers_page(reports: &[OrchestratorReport], viewer: &Viewer) -> String {
    let body = sections(reports, |data| {
        let scalers = &data["scalers"];
        let rows: String = scalers["scalers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|scaler| {
                let sets: Vec<String> = scaler["labelSets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|set| format!("[{}]", labels(set)))
                    .collect();
                let warm = if scaler["warmPool"]["enabled"].as_bool().unwrap_or(false) {
                    format!("{} ready", scaler["warmPool"]["size"])
                } else {
                    "off".to_string()
                };
                format!(
                    r#"<tr><td>{name}</td><td>{kind}</td><td>{alive} / {max}</td><td>{warm}</td><td>{sets}</td><td><span class="status status-{health}">{health}</span> <pre>{message}</pre></td></tr>"#,
                    name = text(&scaler["name"]),
                    kind = text(&scaler["type"]),
                    alive = scaler["alive"],
                    max = scaler["maxAgents"],
                    sets = escape(&sets.join(" ")),
                    health = text(&scaler["health"]["status"]),
                    message = text(&scaler["health"]["message"]),
                )
            })
            .collect();
        if rows.is_empty() {
            return r#"<p class="empty">No scaler backends configured</p>"#.to_string();
        }
        format!(
            r#"<p>{alive} of {max} agents alive or starting (globalMaxAgents)</p><table class="scalers"><thead><tr><th>Scaler</th><th>Type</th><th>Agents</th><th>Warm pool</th><th>Label sets</th><th>Health (last 5 min)</th></tr></thead><tbody>{rows}</tbody></table>{waiting}"#,
            alive = scalers["alive"],
            max = scalers["globalMaxAgents"],
            waiting = waiting_jobs(data, &["agents"]),
        )
    });
    layout("Scalers", Some(viewer), &format!("<h1>Scalers</h1>{body}"))
}

pub fn diagnostics_page(reports: &[OrchestratorReport], viewer: &Viewer) -> String {
    let body = sections(reports, |data| {
        let rows: String = data["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|check| {
                let status = check["status"].as_str().unwrap_or("fail");
                format!(
                    r#"<tr><td><span class="status status-{status}">{STATUS}</span></td><td>{name}</td><td><pre>{message}</pre></td><td>{ms} ms</td></tr>"#,
                    STATUS = escape(&status.to_uppercase()),
                    status = escape(status),
                    name = text(&check["name"]),
                    message = text(&check["message"]),
                    ms = check["durationMs"],
                )
            })
            .collect();
        format!(
            r#"<p>Overall: <strong>{overall}</strong></p><table class="diagnostics"><thead><tr><th>Status</th><th>Check</th><th>Message</th><th>Took</th></tr></thead><tbody>{rows}</tbody></table>"#,
            overall = text(&data["status"]),
        )
    });
    layout("Diagnostics", Some(viewer), &format!("<h1>Diagnostics</h1>{body}"))
}
