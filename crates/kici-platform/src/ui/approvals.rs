//! The approval queue: the holds every orchestrator reports (asked live, never cached), the
//! pending ones first — with Approve and Reject for owners — and the decided ones below with
//! who decided and when. An orchestrator that is offline or did not answer is named with why.

use kici_engine::api::format_timestamp;
use kici_engine::api::secrets::{HeldJob, HoldStatus};

use super::runs::branch;
use super::{Viewer, escape, layout, status_class};

/// The queue's filters, as in the URL (`?status=pending&runId=…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalsFilter {
    pub status: Option<String>,
    pub run_id: Option<String>,
}

impl ApprovalsFilter {
    /// The status asked for; anything but a hold status (`all`, empty) means every one.
    pub fn hold_status(&self) -> Option<HoldStatus> {
        self.status.as_deref().and_then(|s| s.parse().ok())
    }

    /// The run asked for, if any.
    pub fn run(&self) -> Option<&str> {
        self.run_id.as_deref().map(str::trim).filter(|r| !r.is_empty())
    }
}

/// What the page shows.
pub struct ApprovalsPage<'a> {
    /// Every answering orchestrator's holds, newest first.
    pub holds: &'a [HeldJob],
    /// Orchestrators that could not be asked: instance id and why.
    pub unavailable: &'a [(String, String)],
    /// No orchestrator has connected since the Platform started.
    pub no_orchestrator: bool,
    pub filter: &'a ApprovalsFilter,
    /// The viewer may approve and reject (`environments:write`).
    pub can_decide: bool,
    pub viewer: &'a Viewer<'a>,
}

/// `user:alice, team:ops`, or who may decide when no clause names anyone.
fn reviewers(hold: &HeldJob) -> String {
    if hold.clauses.is_empty() {
        return "any owner".to_string();
    }
    let clauses: Vec<String> = hold.clauses.iter().map(ToString::to_string).collect();
    escape(&clauses.join(", "))
}

/// A time shown relative by the page script (`3 min ago`), exact until then.
fn time(ms: i64) -> String {
    format!(r#"<time data-ms="{ms}">{}</time>"#, format_timestamp(ms))
}

/// A deadline: `in 59 min` while it is still to come.
fn until(ms: i64) -> String {
    format!(r#"<time data-ms="{ms}" data-until>{}</time>"#, format_timestamp(ms))
}

/// The run, workflow, job and repository cells both tables start with.
fn hold_cells(hold: &HeldJob) -> String {
    format!(
        r#"<td><a href="/runs/{run}"><code>{run}</code></a></td><td>{workflow}</td><td>{job}</td><td>{repo} · {branch}</td><td>{scope}</td>"#,
        run = escape(&hold.run_id),
        workflow = escape(&hold.workflow_name),
        job = escape(&hold.job_name),
        repo = escape(&hold.repo),
        branch = escape(branch(&hold.git_ref)),
        scope = escape(&hold.scope),
    )
}

fn pending_row(hold: &HeldJob, can_decide: bool) -> String {
    let approvals: Vec<&str> = hold.approvals.iter().map(|a| a.name.as_str()).collect();
    let decide = if can_decide {
        r#"<td class="decide"><button data-approve>Approve</button><form class="reject" data-reject><input name="reason" placeholder="Reason" aria-label="Reason for rejecting"><button class="danger" type="submit">Reject</button></form></td>"#
    } else {
        ""
    };
    format!(
        r#"<tr data-hold-id="{hold_id}" data-run-id="{run}" data-job-id="{job_id}">{cells}<td>{reviewers}</td><td>{approvals}</td><td>{reason}</td><td>{created}</td><td>{expires}</td>{decide}</tr>"#,
        hold_id = escape(&hold.hold_id),
        run = escape(&hold.run_id),
        job_id = escape(&hold.job_id),
        cells = hold_cells(hold),
        reviewers = reviewers(hold),
        approvals = if approvals.is_empty() {
            "none".to_string()
        } else {
            escape(&approvals.join(", "))
        },
        reason = escape(hold.reason.as_deref().unwrap_or_default()),
        created = time(hold.created_at),
        expires = until(hold.expires_at),
    )
}

fn decided_row(hold: &HeldJob) -> String {
    format!(
        r#"<tr data-hold-id="{hold_id}" data-run-id="{run}">{cells}<td><span class="{class}">{status}</span></td><td>{by}</td><td>{when}</td><td>{reason}</td></tr>"#,
        hold_id = escape(&hold.hold_id),
        run = escape(&hold.run_id),
        cells = hold_cells(hold),
        class = status_class(hold.status.as_str()),
        status = hold.status.as_str(),
        by = escape(hold.decided_by.as_deref().unwrap_or_default()),
        when = hold.decided_at.map(time).unwrap_or_default(),
        reason = escape(hold.decision_reason.as_deref().unwrap_or_default()),
    )
}

fn filters(filter: &ApprovalsFilter) -> String {
    let chosen = filter.hold_status();
    let options: String = std::iter::once(("", "Any status", chosen.is_none()))
        .chain(
            HoldStatus::ALL
                .iter()
                .map(|s| (s.as_str(), s.as_str(), chosen == Some(*s))),
        )
        .map(|(value, label, selected)| {
            let selected = if selected { " selected" } else { "" };
            format!(r#"<option value="{value}"{selected}>{label}</option>"#)
        })
        .collect();
    format!(
        r#"<form class="filters" method="get" action="/approvals">
<select name="status" aria-label="Status">{options}</select>
<input name="runId" placeholder="Run ID" value="{run}">
<button type="submit">Filter</button> <a href="/approvals">Clear filters</a>
</form>"#,
        run = escape(filter.run().unwrap_or_default()),
    )
}

pub fn approvals_page(page: &ApprovalsPage<'_>) -> String {
    let mut body = format!("<h1>Approvals</h1>\n{}\n", filters(page.filter));
    if page.no_orchestrator {
        body.push_str(r#"<p class="empty">No orchestrator connected</p>"#);
    }
    for (instance_id, error) in page.unavailable {
        body.push_str(&format!(
            r#"<p class="log-message">Orchestrator <code>{}</code>: {}</p>"#,
            escape(instance_id),
            escape(error)
        ));
    }
    let chosen = page.filter.hold_status();
    if chosen.is_none_or(|s| s == HoldStatus::Pending) {
        let rows: String = page
            .holds
            .iter()
            .filter(|h| h.status == HoldStatus::Pending)
            .map(|h| pending_row(h, page.can_decide))
            .collect();
        let (decide_head, columns) = if page.can_decide {
            ("<th>Decide</th>", 11)
        } else {
            ("", 10)
        };
        let rows = if rows.is_empty() {
            format!(r#"<tr><td colspan="{columns}" class="empty">No job is waiting for approval</td></tr>"#)
        } else {
            rows
        };
        let hint = if page.can_decide {
            ""
        } else {
            r#"<p class="hint">Only owners may approve or reject.</p>"#
        };
        body.push_str(&format!(
            r#"<h2>Waiting for approval</h2>{hint}
<table class="holds" id="pending-holds"><thead><tr><th>Run</th><th>Workflow</th><th>Job</th><th>Repository</th><th>Scope</th><th>Reviewers</th><th>Approvals</th><th>Reason</th><th>Held since</th><th>Expires</th>{decide_head}</tr></thead><tbody>{rows}</tbody></table>
"#
        ));
    }
    if chosen != Some(HoldStatus::Pending) {
        let rows: String = page
            .holds
            .iter()
            .filter(|h| h.status != HoldStatus::Pending)
            .map(decided_row)
            .collect();
        let rows = if rows.is_empty() {
            r#"<tr><td colspan="9" class="empty">No decided holds</td></tr>"#.to_string()
        } else {
            rows
        };
        body.push_str(&format!(
            r#"<h2>Decided</h2>
<table class="holds" id="decided-holds"><thead><tr><th>Run</th><th>Workflow</th><th>Job</th><th>Repository</th><th>Scope</th><th>Decision</th><th>By</th><th>When</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table>
"#
        ));
    }
    layout(
        "Approvals",
        Some(page.viewer),
        &format!(r#"<section class="approvals">{body}</section>"#),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kici_engine::protection::{Approver, ApproverClause};

    fn hold(status: HoldStatus) -> HeldJob {
        HeldJob {
            hold_id: "h1".into(),
            run_id: "run-1".into(),
            job_id: "job-1".into(),
            job_name: "deploy".into(),
            workflow_name: "release".into(),
            repo: "app".into(),
            git_ref: "refs/heads/main".into(),
            scope: "production".into(),
            clauses: vec![ApproverClause::User("alice".into())],
            approvals: Vec::new(),
            reason: Some("ship it".into()),
            status,
            created_at: 0,
            expires_at: 3_600_000,
            decided_at: None,
            decided_by: None,
            decision_reason: None,
        }
    }

    fn render(holds: &[HeldJob], status: Option<&str>, can_decide: bool) -> String {
        let viewer = Viewer {
            name: "rita",
            csrf_token: "t",
            pending_approvals: 1,
            manages_users: false,
        };
        approvals_page(&ApprovalsPage {
            holds,
            unavailable: &[],
            no_orchestrator: false,
            filter: &ApprovalsFilter {
                status: status.map(str::to_string),
                run_id: None,
            },
            can_decide,
            viewer: &viewer,
        })
    }

    #[test]
    fn owners_get_approve_and_reject_and_members_only_the_queue() {
        let holds = [hold(HoldStatus::Pending)];
        let owner = render(&holds, None, true);
        assert!(
            owner.contains(r#"<tr data-hold-id="h1" data-run-id="run-1" data-job-id="job-1"><td><a href="/runs/run-1"><code>run-1</code></a></td><td>release</td><td>deploy</td><td>app · main</td><td>production</td><td>user:alice</td><td>none</td><td>ship it</td><td><time data-ms="0">1970-01-01T00:00:00.000Z</time></td><td><time data-ms="3600000" data-until>1970-01-01T01:00:00.000Z</time></td><td class="decide"><button data-approve>Approve</button>"#),
            "{owner}"
        );
        assert!(
            owner.contains(r#"<input name="reason" placeholder="Reason""#),
            "{owner}"
        );
        let member = render(&holds, None, false);
        assert!(!member.contains("data-approve"), "{member}");
        assert!(!member.contains("data-reject"), "{member}");
        assert!(member.contains("Only owners may approve or reject."), "{member}");
    }

    #[test]
    fn decided_holds_say_who_decided_when_and_why() {
        let mut rejected = hold(HoldStatus::Rejected);
        rejected.decided_by = Some("admin".into());
        rejected.decided_at = Some(60_000);
        rejected.decision_reason = Some("freeze week".into());
        let mut approved = hold(HoldStatus::Approved);
        approved.hold_id = "h2".into();
        approved.clauses.clear();
        approved.approvals = vec![Approver {
            name: "bob".into(),
            teams: Vec::new(),
        }];
        approved.decided_by = Some("bob".into());
        let page = render(&[rejected.clone(), approved], None, true);
        assert!(
            page.contains(r#"<td><span class="status status-rejected">rejected</span></td><td>admin</td><td><time data-ms="60000">1970-01-01T00:01:00.000Z</time></td><td>freeze week</td></tr>"#),
            "{page}"
        );
        assert!(page.contains("No job is waiting for approval"), "{page}");
        assert!(
            page.contains(r#"<span class="status status-approved">approved</span></td><td>bob</td>"#),
            "{page}"
        );
        // Filtered to pending, the decided table is left out; to a decided status, the queue.
        let pending = render(std::slice::from_ref(&rejected), Some("pending"), true);
        assert!(!pending.contains("decided-holds"), "{pending}");
        assert!(pending.contains(r#"<option value="pending" selected>"#), "{pending}");
        let decided = render(&[rejected], Some("rejected"), true);
        assert!(!decided.contains("pending-holds"), "{decided}");
    }

    #[test]
    fn a_hold_without_clauses_may_be_decided_by_any_owner() {
        let mut open = hold(HoldStatus::Pending);
        open.clauses.clear();
        assert_eq!(reviewers(&open), "any owner");
        assert_eq!(reviewers(&hold(HoldStatus::Pending)), "user:alice");
    }
}
