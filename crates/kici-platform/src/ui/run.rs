//! A run's page: header, failure banner, the banners of held and waiting jobs, job tree with
//! steps, the Logs tab (provisioning logs above the selected job's steps, each a collapsible
//! section of its log that `app.js` draws from the tree, live while running), the Timeline
//! tab, the Summary tab and the metadata panel whose failure summary repeats the banner.

use kici_engine::api::{Job, Run, RunEvent, RunEventType, format_timestamp};
use kici_engine::protection::ApproverClause;
use kici_engine::status::JobStatus;

use super::{Viewer, duration, elapsed, escape, layout, status_class, trigger_icon};

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
    /// The time the page is drawn at (a run still going is charted up to it).
    pub now: i64,
    pub viewer: &'a Viewer<'a>,
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

/// What the `orchestrator.job.held` event of `job` says it waits for (the latest such event),
/// as one banner line: `Waiting for approval: deploy (production) — reviewers user:alice —
/// expires in 59 min` (the page script makes the time relative). Without the event only the
/// job is named.
fn held_line(job: &Job, events: &[RunEvent]) -> String {
    let held = events
        .iter()
        .rev()
        .find(|e| e.event_type == RunEventType::HoldCreated && e.job_id.as_ref() == Some(&job.job_id));
    let Some(metadata) = held.map(|e| &e.metadata) else {
        return format!("<p>Waiting for approval: {}</p>", escape(&job.job_name));
    };
    let scope = metadata["scope"]
        .as_str()
        .map(|s| format!(" ({})", escape(s)))
        .unwrap_or_default();
    // Clauses this build cannot read are left out rather than shown as "any owner".
    let reviewers = match serde_json::from_value::<Vec<ApproverClause>>(metadata["clauses"].clone()) {
        Ok(clauses) if clauses.is_empty() => " — any owner may approve".to_string(),
        Ok(clauses) => {
            let names: Vec<String> = clauses.iter().map(ToString::to_string).collect();
            format!(" — reviewers {}", escape(&names.join(", ")))
        }
        Err(_) => String::new(),
    };
    let expires = metadata["expiresAt"]
        .as_i64()
        .map(|at| {
            format!(
                r#" — expires <time data-ms="{at}" data-until>{}</time>"#,
                format_timestamp(at)
            )
        })
        .unwrap_or_default();
    format!(
        "<p>Waiting for approval: {}{scope}{reviewers}{expires}</p>",
        escape(&job.job_name)
    )
}

/// A banner for the run's held jobs, linking to their holds in the approval queue, and a
/// note for jobs waiting for their environment's wait timer. Both come from the cache, so
/// they show while the orchestrator is offline.
fn hold_banners(run: &Run, jobs: &[Job], events: &[RunEvent]) -> String {
    let held: String = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Held)
        .map(|j| held_line(j, events))
        .collect();
    let mut banners = String::new();
    if !held.is_empty() {
        banners.push_str(&format!(
            r#"<div class="banner held" role="status" id="held-banner">{held}<a href="/approvals?runId={}">Review in the approval queue</a></div>"#,
            escape(&run.run_id)
        ));
    }
    let waiting: Vec<String> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Waiting)
        .map(|j| escape(&j.job_name))
        .collect();
    if !waiting.is_empty() {
        banners.push_str(&format!(
            r#"<div class="banner notice" role="status" id="waiting-banner">Waiting for the environment's wait timer: {}; queued when it is up</div>"#,
            waiting.join(", ")
        ));
    }
    banners
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

/// The status a group of matrix children shows: the most pressing of theirs.
fn group_status(jobs: &[&Job]) -> &'static str {
    const ORDER: [&str; 11] = [
        "failed",
        "timed_out_stale",
        "running",
        "cancelling",
        "held",
        "waiting",
        "queued",
        "pending",
        "cancelled",
        "skipped",
        "success",
    ];
    ORDER
        .into_iter()
        .find(|status| jobs.iter().any(|j| j.status.as_str() == *status))
        .unwrap_or("pending")
}

/// The jobs as a graph of their `needs`: a column per depth, a node per job, matrix children
/// grouped under their job as "test (3)" and listed when the node is opened. Nodes select the
/// job in the list beside the logs; `app.js` draws the edges.
fn job_graph(jobs: &[Job]) -> String {
    let mut groups: Vec<(&str, Vec<&Job>)> = Vec::new();
    for job in jobs.iter().filter(|j| !j.base_job_name.starts_with("__")) {
        match groups.iter_mut().find(|(name, _)| *name == job.base_job_name) {
            Some((_, members)) => members.push(job),
            None => groups.push((&job.base_job_name, vec![job])),
        }
    }
    if groups.len() < 2 {
        return String::new();
    }
    let needs_of = |members: &[&Job]| -> Vec<String> {
        let mut needs: Vec<String> = members
            .iter()
            .flat_map(|j| j.needs.iter().map(|n| n.upstream_name.clone()))
            .filter(|n| groups.iter().any(|(name, _)| name == n))
            .collect();
        needs.sort();
        needs.dedup();
        needs
    };
    // Depth: one more than the deepest job it needs (a cycle, which compile refuses, stops at
    // the number of jobs).
    let mut depth: Vec<usize> = vec![0; groups.len()];
    for _ in 0..groups.len() {
        for (index, (_, members)) in groups.iter().enumerate() {
            depth[index] = needs_of(members)
                .iter()
                .filter_map(|need| groups.iter().position(|(name, _)| name == need))
                .map(|upstream| depth[upstream] + 1)
                .max()
                .unwrap_or(0);
        }
    }
    let columns = depth.iter().max().copied().unwrap_or(0) + 1;
    let html: String = (0..columns)
        .map(|column| {
            let nodes: String = groups
                .iter()
                .enumerate()
                .filter(|(index, _)| depth[*index] == column)
                .map(|(_, (name, members))| {
                    let status = group_status(members);
                    // A JSON list: names may hold any character, commas included.
                    let needs = serde_json::to_string(&needs_of(members)).unwrap_or_default();
                    let main = if members.len() == 1 {
                        format!(
                            r#"<button type="button" class="node-main" data-select-job="{id}"><span class="{class}">{status}</span> {name}</button>"#,
                            id = escape(&members[0].job_id),
                            class = status_class(status),
                            name = escape(name),
                        )
                    } else {
                        let children: String = members
                            .iter()
                            .map(|job| {
                                format!(
                                    r#"<li><button type="button" data-select-job="{id}"><span class="{class}">{status}</span> {name}</button></li>"#,
                                    id = escape(&job.job_id),
                                    class = status_class(job.status.as_str()),
                                    status = job.status.as_str(),
                                    name = escape(&job.job_name),
                                )
                            })
                            .collect();
                        format!(
                            r#"<details class="node-group"><summary class="node-main"><span class="{class}">{status}</span> {name} ({count})</summary><ul>{children}</ul></details>"#,
                            class = status_class(status),
                            name = escape(name),
                            count = members.len(),
                        )
                    };
                    format!(
                        r#"<div class="node" data-job="{name}" data-needs="{needs}" data-status="{status}">{main}</div>"#,
                        name = escape(name),
                        needs = escape(&needs),
                    )
                })
                .collect();
            format!(r#"<div class="g-col">{nodes}</div>"#)
        })
        .collect();
    format!(
        r#"<div class="graph" role="group" aria-label="Job graph">{html}<svg class="edges" aria-hidden="true"></svg></div>"#
    )
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
            // A "re-run failed jobs" kept this job's success: where it ran, and its logs there.
            let (badge, reused) = match &job.reused_from {
                Some(from) => (
                    r#" <span class="badge reused">reused</span>"#.to_string(),
                    format!(
                        r#"<p class="reused-from">Succeeded in run <a href="/runs/{run}?job={job}"><code>{short}</code></a>; not run again</p>"#,
                        run = escape(&from.run_id),
                        job = escape(&from.job_id),
                        short = escape(&from.run_id.chars().take(8).collect::<String>()),
                    ),
                ),
                None => Default::default(),
            };
            format!(
                r#"<details class="job" data-job-id="{job_id}" data-status="{status}"{open}><summary><span class="{class}">{status}</span> <span class="job-name">{name}</span>{badge} <span class="dur">{dur}</span>{needs}</summary>{error}{reused}<ul class="steps">{steps}</ul></details>"#,
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

/// Where `ms` falls between `start` and `end`, in percent of the chart's width.
fn offset(ms: i64, (start, end): (i64, i64)) -> f64 {
    ((ms - start) as f64 / (end - start).max(1) as f64 * 100.0).clamp(0.0, 100.0)
}

/// One bar of the chart: `class` colours it, `label` says what it is on hover and to screen
/// readers (with when it started and how long it took).
fn bar(class: &str, label: &str, (from, to): (i64, i64), span: (i64, i64)) -> String {
    let left = offset(from, span);
    let width = (offset(to, span) - left).max(0.4);
    let took = kici_engine::api::format_duration(to - from);
    let at = kici_engine::api::format_duration(from - span.0);
    format!(
        r#"<span class="bar {class}" style="left:{left:.2}%;width:{width:.2}%" title="{label}: {took}"><span class="sr-only">{label}: from +{at}, {took}</span></span>"#,
        label = escape(label)
    )
}

fn gantt_row(kind: &str, name: &str, bars: &str) -> String {
    format!(
        r#"<div class="g-row {kind}"><span class="g-label" title="{name}">{name}</span><span class="g-track">{bars}</span></div>"#,
        name = escape(name)
    )
}

/// The run as a Gantt chart: the run, then per job the wait for an agent (with the
/// provisioning band when a scaler started one), the job and each step, coloured by status.
/// A run still going is drawn up to `now`.
fn gantt(run: &Run, jobs: &[Job], events: &[RunEvent], now: i64) -> String {
    let end = run
        .completed_at
        .or_else(|| {
            jobs.iter()
                .filter_map(|j| j.completed_at)
                .max()
                .filter(|_| run.status.is_terminal())
        })
        .unwrap_or(now)
        .max(run.created_at + 1);
    let span = (run.created_at, end);
    let mut rows = gantt_row(
        "run",
        &run.workflow_name,
        &bar(&format!("st-{}", run.status.as_str()), "run", span, span),
    );
    for job in jobs {
        let mut bars = String::new();
        let provisioning: Vec<i64> = events
            .iter()
            .filter(|e| e.event_type.is_provisioning() && e.job_id.as_ref() == Some(&job.job_id))
            .map(|e| e.timestamp_ms)
            .collect();
        let waited_until = job.started_at.or(job.completed_at).unwrap_or(end);
        if waited_until > job.created_at {
            bars.push_str(&bar(
                "queued",
                "waiting for an agent",
                (job.created_at, waited_until),
                span,
            ));
        }
        if let (Some(&first), Some(&last)) = (provisioning.iter().min(), provisioning.iter().max()) {
            bars.push_str(&bar(
                "provisioning",
                "provisioning an agent",
                (first, last.max(first + 1)),
                span,
            ));
        }
        if let Some(started) = job.started_at {
            let until = job.completed_at.unwrap_or(end);
            bars.push_str(&bar(
                &format!("st-{}", job.status.as_str()),
                "job",
                (started, until),
                span,
            ));
        }
        rows.push_str(&gantt_row("job", &job.job_name, &bars));
        for step in job.steps.iter().flatten() {
            let Some(started) = step.started_at else { continue };
            let until = step.completed_at.unwrap_or(end);
            let class = format!("st-{}", step.status.as_str());
            rows.push_str(&gantt_row(
                "step",
                &step.step_name,
                &bar(&class, &step.step_name, (started, until), span),
            ));
        }
    }
    format!(
        r#"<div class="gantt" role="group" aria-label="Timeline chart"><div class="g-axis"><span>0s</span><span>{total}</span></div>{rows}</div>"#,
        total = kici_engine::api::format_duration(end - run.created_at)
    )
}

fn timeline(run: &Run, events: &[RunEvent], jobs: &[Job], now: i64) -> String {
    let chart = gantt(run, jobs, events, now);
    if events.is_empty() {
        return chart;
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
        r#"{chart}<h3>Events</h3><table class="timeline"><thead><tr><th>Time</th><th>Band</th><th>Job</th><th>Event</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

const COPY_ICON: &str = r#"<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path fill="currentColor" d="M5 1h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-1v-1.5h1a.5.5 0 0 0 .5-.5V3a.5.5 0 0 0-.5-.5H5a.5.5 0 0 0-.5.5v1H3V3a2 2 0 0 1 2-2zM3 5h7a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zm0 1.5a.5.5 0 0 0-.5.5v6a.5.5 0 0 0 .5.5h7a.5.5 0 0 0 .5-.5V7a.5.5 0 0 0-.5-.5z"/></svg>"#;

/// `shown` of `value` kept on one line (cut with an ellipsis, whole on hover) with a button
/// that copies all of `value`.
fn copyable(value: &str, shown: &str, what: &str) -> String {
    format!(
        r#"<span class="copyable"><code class="clip" title="{value}">{shown}</code><button type="button" class="icon copy" data-copy="{value}" aria-label="Copy the {what}" title="Copy">{COPY_ICON}</button></span>"#,
        value = escape(value),
        shown = escape(shown)
    )
}

/// A time as "3 min ago", the exact time on hover (`app.js`); `-` when there is none.
fn moment(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => format!(r#"<time data-ms="{ms}">{}</time>"#, format_timestamp(ms)),
        None => "-".to_string(),
    }
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
<dt>Run ID</dt><dd>{id}</dd>
<dt>Status</dt><dd><span class="{class}">{status}</span></dd>
<dt>Workflow</dt><dd>{workflow}</dd>
<dt>Trigger</dt><dd>{trigger}</dd>
{reruns}<dt>Repository</dt><dd>{repo}</dd>
<dt>Ref</dt><dd>{git_ref}</dd>
<dt>SHA</dt><dd>{sha}</dd>
<dt>Created</dt><dd>{created}</dd>
<dt>Started</dt><dd>{started}</dd>
<dt>Completed</dt><dd>{completed}</dd>
<dt>Duration</dt><dd>{duration}</dd>
{failure}
</dl>"#,
        id = copyable(&run.run_id, &run.run_id, "run ID"),
        class = status_class(run.status.as_str()),
        status = run.status.as_str(),
        workflow = escape(&run.workflow_name),
        trigger = escape(&run.trigger),
        reruns = rerun_links(run),
        repo = escape(&run.repo),
        git_ref = escape(&run.git_ref),
        sha = copyable(&run.sha, &run.sha, "commit SHA"),
        created = moment(Some(run.created_at)),
        started = moment(run.started_at),
        completed = moment(run.completed_at),
        duration = elapsed(run.duration_ms, run.started_at.unwrap_or(run.created_at)),
    )
}

pub fn run_page(page: &RunPage<'_>) -> String {
    let run = page.run;
    let actions = match (page.can_write, run.status.is_terminal()) {
        (false, _) => String::new(),
        (true, true) => {
            // As the orchestrator decides it: a job that neither succeeded nor was skipped.
            let failed = page
                .jobs
                .iter()
                .any(|j| !matches!(j.status, JobStatus::Success | JobStatus::Skipped));
            let failed = if failed {
                r#"<button data-rerun="failed">Re-run failed jobs</button>"#
            } else {
                ""
            };
            format!(r#"<div class="actions">{failed}<button data-rerun="all">Re-run</button></div>"#)
        }
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
        r##"<section class="run" data-run-id="{id}" data-run-status="{status}" data-orchestrator-online="{online}">
<header class="run-header">
<h1>{workflow} <span class="{class}" id="run-status">{status}</span></h1>
{title}<p class="facts">{trigger_icon}{trigger}{actor} · {repo} · <span class="branch">{branch}</span> · {sha} · created <time data-ms="{created}">{created_at}</time> · <span id="run-elapsed">{elapsed}</span></p>
{actions}
</header>
{banner}<div id="hold-banners">{holds}</div>{stale}
<div id="job-graph">{graph}</div>
<div class="panels">
<nav class="tree" aria-label="Jobs">{tree}</nav>
<section class="content">
<div class="tabs" role="tablist"><button role="tab" data-tab="logs" aria-selected="true">Logs</button><button role="tab" data-tab="timeline" aria-selected="false">Timeline</button><button role="tab" data-tab="summary" aria-selected="false">Summary</button></div>
<div class="tab" id="tab-logs">
<details class="provisioning" id="provisioning" hidden><summary>Provisioning logs</summary><pre class="log" id="provisioning-log"></pre></details>
<div class="log-head"><span id="log-title">Select a job</span> <span id="log-badge" class="badge" hidden>Streaming</span>
<span class="log-tools"><input type="search" id="log-search" placeholder="Search the log" aria-label="Search the log"><span id="log-matches" class="hint" aria-live="polite"></span><button type="button" class="icon" id="log-prev" aria-label="Previous match">↑</button><button type="button" class="icon" id="log-next" aria-label="Next match">↓</button><button type="button" id="log-times" aria-pressed="false">Timestamps</button></span></div>
<div class="log" id="log" tabindex="0" role="region" aria-label="Step logs"></div>
<button type="button" id="log-jump" class="jump" hidden>Jump to bottom ↓</button>
<p id="log-message" class="log-message"></p>
</div>
<div class="tab" id="tab-timeline" hidden>{timeline}</div>
<div class="tab" id="tab-summary" hidden>{summary}</div>
</section>
<aside class="metadata" aria-label="Metadata">{metadata}</aside>
</div>
</section>"##,
        id = escape(&run.run_id),
        status = run.status.as_str(),
        online = page.orchestrator_online,
        workflow = escape(&run.workflow_name),
        class = status_class(run.status.as_str()),
        repo = escape(&run.repo),
        branch = escape(super::runs::branch(&run.git_ref)),
        sha = copyable(&run.sha, &run.sha.chars().take(7).collect::<String>(), "commit SHA"),
        trigger_icon = trigger_icon(&run.trigger),
        trigger = escape(&run.trigger),
        actor = run
            .actor
            .as_deref()
            .map(|actor| format!(" by {}", escape(actor)))
            .unwrap_or_default(),
        title = run
            .title
            .as_deref()
            .map(|title| format!(r#"<p class="run-title">{}</p>"#, escape(title)))
            .unwrap_or_default(),
        created = run.created_at,
        created_at = format_timestamp(run.created_at),
        elapsed = elapsed(run.duration_ms, run.started_at.unwrap_or(run.created_at)),
        banner = banner(run),
        holds = hold_banners(run, page.jobs, page.events),
        tree = job_tree(page.jobs),
        graph = job_graph(page.jobs),
        timeline = timeline(run, page.events, page.jobs, page.now),
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
    let job_rows: String = jobs
        .iter()
        .map(|job| {
            let waited = job.started_at.map(|started| started - job.created_at);
            format!(
                r#"<tr><td>{name}</td><td><span class="{class}">{status}</span></td><td class="num">{waited}</td><td class="num">{took}</td></tr>"#,
                name = escape(&job.job_name),
                class = status_class(job.status.as_str()),
                status = job.status.as_str(),
                waited = duration(waited),
                took = duration(job.duration_ms),
            )
        })
        .collect();
    let mut steps: Vec<(&Job, &kici_engine::api::Step, i64)> = jobs
        .iter()
        .flat_map(|job| job.steps.iter().flatten().map(move |step| (job, step)))
        .filter_map(|(job, step)| step.duration_ms.map(|ms| (job, step, ms)))
        .collect();
    steps.sort_by_key(|(_, _, ms)| std::cmp::Reverse(*ms));
    let slowest: String = steps
        .iter()
        .take(5)
        .map(|(job, step, ms)| {
            format!(
                r#"<tr><td>{step}</td><td>{job}</td><td class="num">{took}</td></tr>"#,
                step = escape(&step.step_name),
                job = escape(&job.job_name),
                took = duration(Some(*ms)),
            )
        })
        .collect();
    let slowest = if slowest.is_empty() {
        String::new()
    } else {
        format!(
            r#"<h3>Slowest steps</h3><table class="slowest"><thead><tr><th>Step</th><th>Job</th><th>Took</th></tr></thead><tbody>{slowest}</tbody></table>"#
        )
    };
    format!(
        r#"<p>{} job(s): {}</p><p>Triggered by <strong>{}</strong> on {} at <code>{}</code>.</p>{init}<h3>Jobs</h3><table class="job-durations"><thead><tr><th>Job</th><th>Status</th><th>Waited</th><th>Took</th></tr></thead><tbody>{job_rows}</tbody></table>{slowest}"#,
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
            trust: None,
            title: None,
            actor: None,
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
    fn a_failure_before_any_step_is_titled_by_its_category_above_the_reason() {
        use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
        let reason =
            "git fetch of source `app` from http://10.0.0.1:4000/git/s failed on this container agent: <nothing>";
        let mut failed = run(RunStatus::Failed, reason);
        failed.init_failure = Some(InitFailure {
            scope: InitFailureScope::Job,
            category: InitFailureCategory::Checkout,
            message: reason.into(),
            job_name: Some("build".into()),
        });
        assert_eq!(
            banner(&failed),
            "<div class=\"banner failure\" role=\"alert\" id=\"failure-banner\"><strong class=\"category\">Source checkout failed</strong><pre class=\"reason\">git fetch of source `app` from http://10.0.0.1:4000/git/s failed on this container agent: &lt;nothing&gt;</pre></div>"
        );
        let mut succeeded = run(RunStatus::Success, "");
        succeeded.failure_reason = None;
        assert_eq!(banner(&succeeded), "");
    }

    fn job(name: &str, status: JobStatus) -> Job {
        Job {
            job_id: format!("{name}-id").into(),
            run_id: "r".into(),
            job_name: name.into(),
            base_job_name: name.into(),
            status,
            agent_id: None,
            error_message: None,
            init_failure: None,
            needs: Vec::new(),
            created_at: 0,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            steps: None,
            reused_from: None,
        }
    }

    fn held_event(job_id: &str, metadata: serde_json::Value) -> RunEvent {
        RunEvent {
            event_id: "e".into(),
            run_id: "r".into(),
            job_id: Some(job_id.into()),
            event_type: RunEventType::HoldCreated,
            title: "Waiting for approval".into(),
            source_service: "orchestrator".into(),
            timestamp_ms: 0,
            metadata,
        }
    }

    #[test]
    fn held_jobs_get_a_banner_linking_to_the_queue_and_waiting_jobs_a_note() {
        let run = run(RunStatus::Pending, "");
        let jobs = [
            job("deploy", JobStatus::Held),
            job("smoke", JobStatus::Held),
            job("canary", JobStatus::Waiting),
            job("build", JobStatus::Success),
        ];
        let events = [
            held_event(
                "deploy-id",
                serde_json::json!({"job": "deploy", "scope": "production", "clauses": [{"user": "alice"}], "expiresAt": 3_600_000}),
            ),
            held_event(
                "smoke-id",
                serde_json::json!({"job": "smoke", "scope": "job", "clauses": [], "expiresAt": 60_000}),
            ),
        ];
        assert_eq!(
            hold_banners(&run, &jobs, &events),
            concat!(
                r#"<div class="banner held" role="status" id="held-banner">"#,
                r#"<p>Waiting for approval: deploy (production) — reviewers user:alice — expires <time data-ms="3600000" data-until>1970-01-01T01:00:00.000Z</time></p>"#,
                r#"<p>Waiting for approval: smoke (job) — any owner may approve — expires <time data-ms="60000" data-until>1970-01-01T00:01:00.000Z</time></p>"#,
                r#"<a href="/approvals?runId=r">Review in the approval queue</a></div>"#,
                r#"<div class="banner notice" role="status" id="waiting-banner">Waiting for the environment's wait timer: canary; queued when it is up</div>"#,
            )
        );
        // Without its event (not cached yet) the job is still named.
        assert_eq!(
            hold_banners(&run, &jobs[..1], &[]),
            r#"<div class="banner held" role="status" id="held-banner"><p>Waiting for approval: deploy</p><a href="/approvals?runId=r">Review in the approval queue</a></div>"#
        );
        assert_eq!(hold_banners(&run, &jobs[3..], &events), "");
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
