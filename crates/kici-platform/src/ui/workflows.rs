//! The Workflows page: per orchestrator, the workflows of each repository's default branch with
//! their triggers, their schedules' next ticks, and "Run now": a form built from a `dispatch()`
//! trigger's inputs (a select for an enum or a boolean, a field for the rest), or a button for
//! a schedule. Only viewers who may start runs get the forms.

use kici_engine::api::triggers::{WorkflowEntry, WorkflowList};
use kici_engine::inputs::{InputSpec, InputType};
use serde::Deserialize;

use super::{Viewer, escape, layout};
use crate::http::OrchestratorReport;

fn input_field(name: &str, spec: &InputSpec) -> String {
    let required = if spec.required() { " required" } else { "" };
    let label = format!(
        r#"<label for="in-{id}">{name}{mark}</label>"#,
        id = escape(name),
        name = escape(name),
        mark = if spec.required() { " *" } else { "" }
    );
    let default = spec.default.as_ref().map(|d| match d {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let options = |values: Vec<String>| {
        let blank = if spec.required() {
            ""
        } else {
            r#"<option value=""></option>"#
        };
        let chosen: String = values
            .iter()
            .map(|v| {
                let selected = if default.as_deref() == Some(v.as_str()) {
                    " selected"
                } else {
                    ""
                };
                format!(r#"<option{selected}>{}</option>"#, escape(v))
            })
            .collect();
        format!(
            r#"<select id="in-{id}" name="{id}"{required}>{blank}{chosen}</select>"#,
            id = escape(name)
        )
    };
    let control = match spec.input_type {
        InputType::Enum => options(spec.values.clone().unwrap_or_default()),
        InputType::Boolean => options(vec!["true".into(), "false".into()]),
        _ => format!(
            r#"<input id="in-{id}" name="{id}" value="{value}" placeholder="{hint}"{required}>"#,
            id = escape(name),
            value = escape(default.as_deref().unwrap_or_default()),
            hint = escape(&spec.describe()),
        ),
    };
    let description = spec
        .description
        .as_deref()
        .map(|d| format!(r#"<small>{}</small>"#, escape(d)))
        .unwrap_or_default();
    format!(r#"<div class="field">{label}{control}{description}</div>"#)
}

fn workflow_row(instance_id: &str, workflow: &WorkflowEntry, can_run: bool) -> String {
    let triggers: String = workflow
        .triggers
        .iter()
        .map(|t| format!("<li><code>{}</code></li>", escape(t)))
        .collect();
    let schedules: String = workflow
        .schedules
        .iter()
        .map(|s| {
            let next = match s.next_fire_at {
                Some(at) => format!(r#"next <time data-ms="{at}"></time>"#),
                None => "disabled".to_string(),
            };
            let button = if can_run {
                format!(
                    r#" <button data-run-schedule="{}" data-orchestrator="{}">Run now</button>"#,
                    escape(&s.id),
                    escape(instance_id)
                )
            } else {
                String::new()
            };
            format!(
                r#"<li><code>{} ({})</code> {next}{button}</li>"#,
                escape(&s.cron),
                escape(&s.timezone)
            )
        })
        .collect();
    let form = match (&workflow.dispatch, can_run) {
        (Some(dispatch), true) => {
            let types = if dispatch.types.is_empty() {
                String::new()
            } else {
                let options: String = dispatch
                    .types
                    .iter()
                    .map(|t| format!("<option>{}</option>", escape(t)))
                    .collect();
                format!(
                    r#"<div class="field"><label for="dispatch-type">type *</label><select id="dispatch-type" data-type required>{options}</select></div>"#
                )
            };
            let fields: String = types
                + &dispatch
                    .inputs
                    .iter()
                    .flatten()
                    .map(|(name, spec)| input_field(name, spec))
                    .collect::<String>();
            format!(
                r#"<form class="dispatch" data-dispatch data-orchestrator="{orch}" data-source="{source}" data-repo="{repo}" data-workflow="{workflow}">{fields}<button type="submit">Run now</button></form>"#,
                orch = escape(instance_id),
                source = escape(&workflow.source),
                repo = escape(&workflow.repo),
                workflow = escape(&workflow.workflow),
            )
        }
        _ => String::new(),
    };
    format!(
        r#"<tr><td><a href="/runs?workflow={wf_q}">{workflow}</a></td><td>{repo} · <code>{git_ref}</code></td><td><ul class="plain">{triggers}</ul></td><td><ul class="plain">{schedules}</ul></td><td>{form}</td></tr>"#,
        wf_q = escape(&workflow.workflow.replace(' ', "%20")),
        workflow = escape(&workflow.workflow),
        repo = escape(&workflow.repo),
        git_ref = escape(workflow.git_ref.trim_start_matches("refs/heads/")),
    )
}

/// The page.
pub fn workflows_page(reports: &[OrchestratorReport], can_run: bool, viewer: &Viewer) -> String {
    let sections: String = if reports.is_empty() {
        r#"<p class="empty">No orchestrator connected</p>"#.to_string()
    } else {
        reports
            .iter()
            .map(|report| {
                let body = match (&report.data, &report.error) {
                    (Some(data), _) => match WorkflowList::deserialize(data) {
                        Ok(list) if list.workflows.is_empty() => r#"<p class="empty">No workflows yet: a push to a repository's default branch registers its lock file's workflows.</p>"#.to_string(),
                        Ok(list) => {
                            let rows: String = list
                                .workflows
                                .iter()
                                .map(|w| workflow_row(&report.instance_id, w, can_run))
                                .collect();
                            format!(
                                r#"<table class="workflows"><thead><tr><th>Workflow</th><th>Repository</th><th>Triggers</th><th>Schedules</th><th>Run now</th></tr></thead><tbody>{rows}</tbody></table>"#
                            )
                        }
                        Err(_) => r#"<p class="log-message">The orchestrator's answer could not be read.</p>"#.to_string(),
                    },
                    (None, Some(error)) => format!(r#"<p class="log-message">{}</p>"#, escape(error)),
                    (None, None) => String::new(),
                };
                format!(
                    r#"<section class="orchestrator"><h2>Orchestrator <code>{}</code></h2>{body}</section>"#,
                    escape(&report.instance_id)
                )
            })
            .collect()
    };
    let hint = if can_run {
        ""
    } else {
        r#"<p class="hint">Only owners may start runs.</p>"#
    };
    layout(
        "Workflows",
        Some(viewer),
        &format!(r#"<section class="workflows"><h1>Workflows</h1>{hint}{sections}</section>"#),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> OrchestratorReport {
        OrchestratorReport {
            instance_id: "orch-1".into(),
            online: true,
            data: Some(json!({"workflows": [{
                "source": "app", "repo": "app", "workflow": "deploy", "ref": "refs/heads/main", "sha": "abc",
                "triggers": ["dispatch (inputs: environment, replicas)", "schedule (cron: 0 3 * * * UTC)"],
                "dispatch": {"inputs": {
                    "environment": {"type": "enum", "optional": false, "nullable": false, "values": ["staging", "production"]},
                    "replicas": {"type": "integer", "optional": false, "nullable": false, "default": 2, "min": 1, "max": 10}
                }},
                "schedules": [{"id": "s1", "source": "app", "repo": "app", "workflow": "deploy", "cron": "0 3 * * *", "timezone": "UTC",
                    "enabled": true, "ref": "refs/heads/main", "sha": "abc", "lastFiredAt": 0, "nextFireAt": 10800000, "registeredAt": 0}]
            }]})),
            error: None,
        }
    }

    #[test]
    fn owners_get_a_run_now_form_built_from_the_inputs() {
        let viewer = Viewer {
            name: "alice",
            csrf_token: "t",
            pending_approvals: 0,
            manages_users: false,
        };
        let owner = workflows_page(&[report()], true, &viewer);
        assert!(owner.contains(r#"<select id="in-environment" name="environment" required><option>staging</option><option>production</option></select>"#), "{owner}");
        assert!(
            owner.contains(r#"<input id="in-replicas" name="replicas" value="2" placeholder="integer (1–10)">"#),
            "{owner}"
        );
        assert!(owner.contains(r#"<code>0 3 * * * (UTC)</code> next <time data-ms="10800000"></time> <button data-run-schedule="s1" data-orchestrator="orch-1">Run now</button>"#), "{owner}");
        assert!(owner.contains("<li><code>dispatch (inputs: environment, replicas)</code></li>"));
        let member = workflows_page(&[report()], false, &viewer);
        assert!(
            !member.contains("data-dispatch") && !member.contains("data-run-schedule"),
            "{member}"
        );
        assert!(member.contains("Only owners may start runs."));
    }
}
