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
    pub trigger: Option<String>,
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

impl RunsFilter {
    /// Whether any filter narrows the list (a page number does not).
    fn narrows(&self) -> bool {
        [
            &self.status,
            &self.workflow,
            &self.repository,
            &self.branch,
            &self.trigger,
        ]
        .iter()
        .any(|value| value.as_deref().is_some_and(|v| !v.is_empty()))
    }
}

/// The rows alone (also what live updates swap in). A run with a job among `held_jobs` (run
/// ids) gets a "Waiting for approval" chip linking to its holds in the queue. No run says
/// whether none exists yet or none matches `filter`.
pub fn runs_rows(runs: &[Run], held_jobs: &[String], filter: &RunsFilter) -> String {
    if runs.is_empty() {
        let empty = if filter.narrows() {
            r#"No matching runs (<a href="/runs">clear the filters</a>)"#
        } else {
            "No runs yet"
        };
        return format!(r#"<tr><td colspan="6" class="empty">{empty}</td></tr>"#);
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

/// A filter's `<option>`s, `chosen` selected, the empty value labelled `any`.
fn options(values: &[&str], chosen: Option<&str>, any: &str) -> String {
    values
        .iter()
        .map(|value| {
            let selected = if Some(*value) == chosen { " selected" } else { "" };
            let label = if value.is_empty() { any } else { value };
            format!(r#"<option value="{value}"{selected}>{label}</option>"#)
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
    let statuses = options(
        &["", "pending", "running", "success", "failed", "cancelled", "cancelling"],
        filter.status.as_deref(),
        "Any status",
    );
    // What can start a run: every event type, and a re-run.
    let trigger_names: Vec<&str> = std::iter::once("")
        .chain(kici_engine::event::EventType::ALL.iter().map(|t| t.as_str()))
        .chain(std::iter::once("rerun"))
        .collect();
    let triggers = options(&trigger_names, filter.trigger.as_deref(), "Any trigger");
    // The page links keep the filters.
    let link = |to: i64| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("status", &filter.status),
            ("workflow", &filter.workflow),
            ("repository", &filter.repository),
            ("branch", &filter.branch),
            ("trigger", &filter.trigger),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                query.append_pair(key, value);
            }
        }
        query.append_pair("page", &to.to_string());
        format!("/runs?{}", query.finish())
    };
    let newer = if page > 1 {
        format!(r#"<a href="{}" rel="prev">← Newer</a>"#, escape(&link(page - 1)))
    } else {
        String::new()
    };
    let older = if last < total {
        format!(r#"<a href="{}" rel="next">Older →</a>"#, escape(&link(page + 1)))
    } else {
        String::new()
    };
    let body = format!(
        r#"<h1>Runs</h1>
<form class="filters" method="get" action="/runs">
<select name="status" aria-label="Status">{statuses}</select>
<input name="workflow" placeholder="Workflow" value="{workflow}" aria-label="Workflow">
<input name="repository" placeholder="Repository" value="{repository}" aria-label="Repository">
<input name="branch" placeholder="Branch" value="{branch}" aria-label="Branch">
<select name="trigger" aria-label="Trigger">{triggers}</select>
<button type="submit">Filter</button> <a href="/runs">Clear filters</a>
</form>
<table class="runs" data-live-runs>
<thead><tr><th>Status</th><th>Run</th><th>Repository</th><th>Branch</th><th>Duration</th><th>Time</th></tr></thead>
<tbody>{rows}</tbody>
</table>
<nav class="pages" aria-label="Pages"><span class="count">Showing {first}-{last} of {total} runs</span>{newer}{older}</nav>"#,
        workflow = escape(RunsFilter::field(&filter.workflow)),
        repository = escape(RunsFilter::field(&filter.repository)),
        branch = escape(RunsFilter::field(&filter.branch)),
        rows = runs_rows(runs, held_jobs, filter),
    );
    layout("Runs", Some(viewer), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_the_filters_and_the_trigger_filter_shows_its_choice() {
        let viewer = Viewer {
            name: "rita",
            csrf_token: "t",
            pending_approvals: 0,
            manages_users: false,
        };
        let filter = RunsFilter {
            branch: Some("main".into()),
            trigger: Some("push".into()),
            page: Some(2),
            ..RunsFilter::default()
        };
        let page = runs_page(&[], 45, &filter, &[], &viewer, 20);
        assert!(
            page.contains(r#"<a href="/runs?branch=main&amp;trigger=push&amp;page=1" rel="prev">← Newer</a>"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<a href="/runs?branch=main&amp;trigger=push&amp;page=3" rel="next">Older →</a>"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<option value="push" selected>push</option>"#),
            "{page}"
        );
        let last = RunsFilter {
            page: Some(3),
            ..filter
        };
        let page = runs_page(&[], 40, &last, &[], &viewer, 20);
        assert!(!page.contains(r#"rel="next""#), "no older page after the last");
    }
}
