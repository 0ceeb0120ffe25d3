//! A run's page: header, failure banner, job tree with steps, the Logs tab (provisioning
//! logs above the step log, live while running), the Timeline tab, the Summary tab and the
//! metadata panel whose failure summary repeats the banner.

use kici_engine::api::{Job, Run, RunEvent, format_timestamp};

use super::{Viewer, duration, escape, layout, status_class};

/// What the page shows.
pub struct RunPage<'a> {
    pub run: &'a Run,
    pub jobs: &'a [Job],
    pub events: &'a [RunEvent],
    pub orchestrator_online: bool,
    /// The orchestrator has been away too long: the status may be out of date.
    pub stale: bool,
    /// The user may cancel.
    pub can_write: bool,
    pub viewer: &'a Viewer<'a>,
}

fn when(ms: Option<i64>) -> String {
    ms.map(format_timestamp).unwrap_or_else(|| "-".to_string())
}

fn banner(run: &Run) -> String {
    let Some(reason) = &run.failure_reason else {
        return String::new();
    };
    let label = run
        .init_failure
        .as_ref()
        .map(|init| format!(r#"<strong class="category">{}</strong>"#, escape(init.category.title())))
        .unwrap_or_default();
    // A cancel is someone's decision, not a failure: a neutral notice says who.
    if run.status == kici_engine::status::RunStatus::Cancelled {
        return format!(
            r#"<div class="banner notice" role="status" id="failure-banner">{label}<pre class="reason">{}</pre></div>"#,
            escape(reason)
        );
    }
    format!(
        r#"<div class="banner failure" role="alert" id="failure-banner">{label}<pre class="reason">{}</pre></div>"#,
        escape(reason)
    )
}

/// "Re-run of" and "Re-runs" rows linking a re-run and its original both ways.
fn rerun_links(run: &Run) -> String {
    let link = |id: &str| format!(r#"<a href="/runs/{0}"><code>{0}</code></a>"#, escape(id));
    let mut rows = String::new();
    if let Some(original) = &run.rerun_of {
        rows.push_str(&format!("<dt>Re-run of</dt><dd>{}</dd>\n", link(original)));
    }
    if !run.reruns.is_empty() {
        let links: Vec<String> = run.reruns.iter().map(|id| link(id)).collect();
        rows.push_str(&format!("<dt>Re-runs</dt><dd>{}</dd>\n", links.join(" ")));
    }
    rows
}

fn job_tree(jobs: &[Job]) -> String {
    let first_failed = jobs.iter().position(|j| is_failure(j.status.as_str()));
    jobs.iter()
        .enumerate()
        .map(|(index, job)| {
            let open = if Some(index) == first_failed { " open" } else { "" };
            let needs = if job.needs.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = job.needs.iter().map(|n| escape(&n.upstream_name)).collect();
                format!(r#"<span class="needs">needs {}</span>"#, names.join(", "))
            };
            let steps: String = job
                .steps
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|step| {
                    let exit = step
                        .exit_code
                        .filter(|code| *code != 0)
                        .map(|code| format!(r#" <span class="exit">exit {code}</span>"#))
                        .unwrap_or_default();
                    let error = step
                        .error_message
                        .as_ref()
                        .map(|e| format!(r#"<div class="step-error">{}</div>"#, escape(e)))
                        .unwrap_or_default();
                    format!(
                        r##"<li><a href="#" class="step" data-job-id="{job_id}" data-step-index="{index}" data-step-name="{name}" data-status="{status}"><span class="dot"></span>{name}<span class="dur">{dur}</span>{exit}</a>{error}</li>"##,
                        job_id = escape(&job.job_id),
                        index = step.step_index,
                        status = step.status.as_str(),
                        name = escape(&step.step_name),
                        dur = duration(step.duration_ms),
                    )
                })
                .collect();
            let error = job
                .error_message
                .as_ref()
                .map(|e| format!(r#"<pre class="job-error">{}</pre>"#, escape(e)))
                .unwrap_or_default();
            format!(
                r#"<details class="job" data-job-id="{job_id}" data-status="{status}"{open}><summary><span class="{class}">{status}</span> <span class="job-name">{name}</span> <span class="dur">{dur}</span>{needs}</summary>{error}<ul class="steps">{steps}</ul></details>"#,
                job_id = escape(&job.job_id),
                status = job.status.as_str(),
                class = status_class(job.status.as_str()),
                name = escape(&job.job_name),
                dur = duration(job.duration_ms),
            )
        })
        .collect()
}

fn is_failure(status: &str) -> bool {
    matches!(status, "failed" | "timed_out_stale" | "drift_dropped")
}

fn timeline(events: &[RunEvent], jobs: &[Job]) -> String {
    if events.is_empty() {
        return r#"<p class="empty">No timeline events for this run.</p>"#.to_string();
    }
    let rows: String = events
        .iter()
        .map(|event| {
            let job = event
                .job_id
                .as_ref()
                .and_then(|id| jobs.iter().find(|j| j.job_id == *id))
                .map(|j| escape(&j.job_name))
                .unwrap_or_default();
            let detail = event
                .metadata
                .get("detail")
                .or_else(|| event.metadata.get("reason"))
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            let band = if event.event_type.is_provisioning() {
                "Provisioning"
            } else {
                "Orchestrator"
            };
            let class = if event.event_type.is_failure() { " class=\"failed\"" } else { "" };
            format!(
                r#"<tr{class}><td><time data-ms="{ts}">{when}</time></td><td>{band}</td><td>{job}</td><td class="event-title">{title}</td><td><pre>{detail}</pre></td></tr>"#,
                ts = event.timestamp_ms,
                when = format_timestamp(event.timestamp_ms),
                title = escape(&event.title),
                detail = escape(detail),
            )
        })
        .collect();
    format!(
        r#"<table class="timeline"><thead><tr><th>Time</th><th>Band</th><th>Job</th><th>Event</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

fn metadata(run: &Run) -> String {
    let failure = run
        .failure_reason
        .as_ref()
        .map(|r| {
            format!(
                r#"<dt>Failure summary</dt><dd><pre id="metadata-failure">{}</pre></dd>"#,
                escape(r)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<dl>
<dt>Run ID</dt><dd><code>{id}</code></dd>
<dt>Status</dt><dd><span class="{class}">{status}</span></dd>
<dt>Workflow</dt><dd>{workflow}</dd>
<dt>Trigger</dt><dd>{trigger}</dd>
{reruns}<dt>Repository</dt><dd>{repo}</dd>
<dt>Ref</dt><dd>{git_ref}</dd>
<dt>SHA</dt><dd><code>{sha}</code></dd>
<dt>Created</dt><dd>{created}</dd>
<dt>Started</dt><dd>{started}</dd>
<dt>Completed</dt><dd>{completed}</dd>
<dt>Duration</dt><dd>{duration}</dd>
{failure}
</dl>"#,
        id = escape(&run.run_id),
        class = status_class(run.status.as_str()),
        status = run.status.as_str(),
        workflow = escape(&run.workflow_name),
        trigger = escape(&run.trigger),
        reruns = rerun_links(run),
        repo = escape(&run.repo),
        git_ref = escape(&run.git_ref),
        sha = escape(&run.sha),
        created = when(Some(run.created_at)),
        started = when(run.started_at),
        completed = when(run.completed_at),
        duration = duration(run.duration_ms),
    )
}

pub fn run_page(page: &RunPage<'_>) -> String {
    let run = page.run;
    let sha: String = run.sha.chars().take(7).collect();
    let actions = match (page.can_write, run.status.is_terminal()) {
        (false, _) => String::new(),
        (true, true) => r#"<div class="actions"><button data-rerun>Re-run</button></div>"#.to_string(),
        (true, false) => {
            let force = if run.status.as_str() == "cancelling" {
                r#"<button class="danger" data-cancel="force">Force cancel</button>"#
            } else {
                ""
            };
            format!(r#"<div class="actions"><button data-cancel="graceful">Cancel</button>{force}</div>"#)
        }
    };
    let stale = if page.stale {
        r#"<p class="banner stale" role="status">This run's orchestrator has been offline for more than 5 minutes; the status shown may be out of date.</p>"#
    } else {
        ""
    };
    let body = format!(
        r#"<section class="run" data-run-id="{id}" data-run-status="{status}" data-orchestrator-online="{online}">
<header class="run-header">
<h1>{workflow} <span class="{class}" id="run-status">{status}</span></h1>
<p class="facts">{repo} · {git_ref} · <code>{sha}</code> · {trigger} · created <time data-ms="{created}">{created_at}</time> · {duration}</p>
{actions}
</header>
{banner}{stale}
<div class="panels">
<nav class="tree" aria-label="Jobs">{tree}</nav>
<section class="content">
<div class="tabs" role="tablist"><button role="tab" data-tab="logs" aria-selected="true">Logs</button><button role="tab" data-tab="timeline" aria-selected="false">Timeline</button><button role="tab" data-tab="summary" aria-selected="false">Summary</button></div>
<div class="tab" id="tab-logs">
<details class="provisioning" id="provisioning" hidden><summary>Provisioning logs</summary><pre class="log" id="provisioning-log"></pre></details>
<div class="log-head"><span id="log-title">Select a step</span> <span id="log-badge" class="badge" hidden>Streaming</span></div>
<pre class="log" id="log"></pre>
<p id="log-message" class="log-message"></p>
</div>
<div class="tab" id="tab-timeline" hidden>{timeline}</div>
<div class="tab" id="tab-summary" hidden>{summary}</div>
</section>
<aside class="metadata" aria-label="Metadata">{metadata}</aside>
</div>
</section>"#,
        id = escape(&run.run_id),
        status = run.status.as_str(),
        online = page.orchestrator_online,
        workflow = escape(&run.workflow_name),
        class = status_class(run.status.as_str()),
        repo = escape(&run.repo),
        git_ref = escape(&run.git_ref),
        sha = escape(&sha),
        trigger = escape(&run.trigger),
        created = run.created_at,
        created_at = format_timestamp(run.created_at),
        duration = duration(run.duration_ms),
        banner = banner(run),
        tree = job_tree(page.jobs),
        timeline = timeline(page.events, page.jobs),
        summary = summary(run, page.jobs),
        metadata = metadata(run),
    );
    layout(&run.workflow_name, Some(page.viewer), &body)
}

fn summary(run: &Run, jobs: &[Job]) -> String {
    let counts = ["success", "failed", "timed_out_stale", "cancelled", "skipped"]
        .iter()
        .filter_map(|status| {
            let n = jobs.iter().filter(|j| j.status.as_str() == *status).count();
            (n > 0).then(|| format!("{n} {status}"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let init = run
        .init_failure
        .as_ref()
        .map(|i| format!("<p>Init failure: <strong>{}</strong></p>", escape(i.category.title())))
        .unwrap_or_default();
    format!(
        "<p>{} job(s): {}</p><p>Triggered by <strong>{}</strong> on {} at <code>{}</code>.</p>{init}",
        jobs.len(),
        if counts.is_empty() {
            "none finished".to_string()
        } else {
            counts
        },
        escape(&run.trigger),
        escape(&run.repo),
        escape(&run.sha),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kici_engine::status::RunStatus;

    fn run(status: RunStatus, reason: &str) -> Run {
        Run {
            run_id: "r".into(),
            workflow_name: "ci".into(),
            status,
            repo: "app".into(),
            git_ref: "refs/heads/main".into(),
            sha: "abc".into(),
            trigger: "push".into(),
            provider: "local".into(),
            source_id: "s".into(),
            delivery_id: "d".into(),
            failure_reason: Some(reason.into()),
            init_failure: None,
            created_at: 0,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            rerun_of: None,
            reruns: Vec::new(),
        }
    }

    #[test]
    fn re_runs_and_their_originals_link_both_ways() {
        let mut rerun = run(RunStatus::Failed, "Failed jobs: build");
        rerun.rerun_of = Some("r-1".into());
        assert_eq!(
            rerun_links(&rerun),
            "<dt>Re-run of</dt><dd><a href=\"/runs/r-1\"><code>r-1</code></a></dd>\n"
        );
        let mut original = run(RunStatus::Failed, "Failed jobs: build");
        original.reruns = vec!["r-2".into(), "r-3".into()];
        assert!(rerun_links(&original).contains(r#"<a href="/runs/r-2"><code>r-2</code></a> <a href="/runs/r-3">"#));
    }

    #[test]
    fn a_cancel_is_a_neutral_notice_and_a_failure_an_alert() {
        let cancelled = banner(&run(RunStatus::Cancelled, "Cancelled by admin"));
        assert!(
            cancelled.starts_with(r#"<div class="banner notice" role="status""#),
            "{cancelled}"
        );
        assert!(cancelled.contains("Cancelled by admin"), "{cancelled}");
        let failed = banner(&run(RunStatus::Failed, "Failed jobs: build"));
        assert!(
            failed.starts_with(r#"<div class="banner failure" role="alert""#),
            "{failed}"
        );
    }
}
