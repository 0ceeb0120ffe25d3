//! The runs list: filters kept in the URL, newest first, 20 per page, rows updated live, runs
//! waiting for approval marked.

use kici_engine::api::Run;

use super::{Viewer, elapsed, escape, layout, status_class, trigger_icon};

/// The list's filters, as in the URL (`?status=failed&branch=main`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct RunsFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub page: Option<i64>,
}

impl RunsFilter {
    fn field(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or("")
    }
}

/// The branch of a ref: `refs/heads/main` → `main`.
pub fn branch(git_ref: &str) -> &str {
    git_ref
        .strip_prefix("refs/heads/")
        .or_else(|| git_ref.strip_prefix("refs/tags/"))
        .unwrap_or(git_ref)
}

/// The rows alone (also what live updates swap in). A run with a job among `held_jobs` (run
/// ids) gets a "Waiting for approval" chip linking to its holds in the queue.
pub fn runs_rows(runs: &[Run], held_jobs: &[String]) -> String {
    if runs.is_empty() {
        return r#"<tr><td colspan="6" class="empty">No runs yet</td></tr>"#.to_string();
    }
    runs.iter()
        .map(|run| {
            let sha: String = run.sha.chars().take(7).collect();
            let held = if held_jobs.iter().any(|id| run.run_id == *id) {
                format!(
                    r#" <a class="chip held" href="/approvals?runId={}">Waiting for approval</a>"#,
                    escape(&run.run_id)
                )
            } else {
                String::new()
            };
            let title = run.title.as_deref().unwrap_or(&run.workflow_name);
            let actor = run
                .actor
                .as_deref()
                .map(|actor| format!(r#" by <span class="actor">{}</span>"#, escape(actor)))
                .unwrap_or_default();
            format!(
                r#"<tr data-run-id="{id}"><td><span class="{class}">{status}</span>{held}</td><td class="what"><a class="title" href="/runs/{id}">{title}</a><span class="sub">{workflow} · {trigger}{trigger_name}{actor}</span></td><td>{repo}</td><td><span class="branch">{branch}</span> <code>{sha}</code></td><td>{elapsed}</td><td><time data-ms="{created}"></time></td></tr>"#,
                id = escape(&run.run_id),
                class = status_class(run.status.as_str()),
                status = run.status.as_str(),
                title = escape(title),
                workflow = escape(&run.workflow_name),
                trigger = trigger_icon(&run.trigger),
                trigger_name = escape(&run.trigger),
                repo = escape(&run.repo),
                branch = escape(branch(&run.git_ref)),
                sha = escape(&sha),
                elapsed = elapsed(run.duration_ms, run.started_at.unwrap_or(run.created_at)),
                created = run.created_at,
            )
        })
        .collect()
}

pub fn runs_page(
    runs: &[Run],
    total: i64,
    filter: &RunsFilter,
    held_jobs: &[String],
    viewer: &Viewer,
    page_size: i64,
) -> String {
    let page = filter.page.unwrap_or(1).max(1);
    let first = if total == 0 { 0 } else { (page - 1) * page_size + 1 };
    let last = ((page - 1) * page_size + runs.len() as i64).min(total);
    let statuses = ["", "pending", "running", "success", "failed", "cancelled", "cancelling"]
        .iter()
        .map(|s| {
            let selected = if Some(*s) == filter.status.as_deref() {
                " selected"
            } else {
                ""
            };
            let label = if s.is_empty() { "Any status" } else { s };
            format!(r#"<option value="{s}"{selected}>{label}</option>"#)
        })
        .collect::<String>();
    let body = format!(
        r#"<h1>Runs</h1>
<form class="filters" method="get" action="/runs">
<select name="status" aria-label="Status">{statuses}</select>
<input name="workflow" placeholder="Workflow" value="{workflow}">
<input name="repository" placeholder="Repository" value="{repository}">
<input name="branch" placeholder="Branch" value="{branch}">
<button type="submit">Filter</button> <a href="/runs">Clear filters</a>
</form>
<table class="runs" data-live-runs>
<thead><tr><th>Status</th><th>Run</th><th>Repository</th><th>Branch</th><th>Duration</th><th>Time</th></tr></thead>
<tbody>{rows}</tbody>
</table>
<p class="count">Showing {first}-{last} of {total} runs</p>"#,
        workflow = escape(RunsFilter::field(&filter.workflow)),
        repository = escape(RunsFilter::field(&filter.repository)),
        branch = escape(RunsFilter::field(&filter.branch)),
        rows = runs_rows(runs, held_jobs),
    );
    layout("Runs", Some(viewer), &body)
}
