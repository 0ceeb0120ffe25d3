//! The texts of `kici runs list|show|logs`: the runs table, the run tree (with the run's
//! `failureReason` and each job's `errorMessage`, spec `authoring.md` §0.5), and step logs with
//! `=== <job> › <step> <status> ===` headers, printed incrementally while following.

use std::collections::HashMap;
use std::fmt::Write as _;

use kici_engine::api::{RunDetail, RunList, RunLogs};
use kici_engine::ids::JobId;
use serde_json::{Map, Value};

use crate::format::{duration, timestamp};
use crate::table;

/// The branch of a ref: `refs/heads/` removed, other refs (tags) as they are.
pub fn branch(git_ref: &str) -> &str {
    git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref)
}

/// The `kici runs list` table: columns padded to their widest cell, two spaces apart.
pub fn runs_table(list: &RunList) -> String {
    if list.runs.is_empty() {
        return "No runs found.\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .runs
        .iter()
        .map(|run| {
            vec![
                run.run_id.to_string(),
                run.workflow_name.clone(),
                run.status.to_string(),
                branch(&run.git_ref).to_string(),
                run.trigger.clone(),
                timestamp(run.started_at),
                duration(run.duration_ms),
            ]
        })
        .collect();
    table::render(
        "",
        &["ID", "WORKFLOW", "STATUS", "BRANCH", "TRIGGER", "STARTED", "DURATION"],
        &rows,
    )
}

/// The `kici runs show` tree.
pub fn run_tree(detail: &RunDetail) -> String {
    let run = &detail.run;
    let mut out = format!("Run {}  {}\n", run.run_id, run.status);
    let sha: String = run.sha.chars().take(7).collect();
    let _ = writeln!(
        out,
        "workflow={} repo={} branch={} sha={} trigger={}",
        run.workflow_name,
        run.repo,
        branch(&run.git_ref),
        sha,
        run.trigger
    );
    let _ = writeln!(
        out,
        "started={} duration={}",
        timestamp(run.started_at),
        duration(run.duration_ms)
    );
    if let Some(original) = &run.rerun_of {
        let _ = writeln!(out, "re-run of {original}");
    }
    if !run.reruns.is_empty() {
        let _ = writeln!(out, "re-runs: {}", run.reruns.join(", "));
    }
    if let Some(reason) = &run.failure_reason {
        push_labelled(&mut out, "", "failure: ", reason);
    }
    if let Some(failure) = &run.init_failure {
        let _ = writeln!(
            out,
            "category: {} — {}",
            failure.category.as_str(),
            failure.category.title()
        );
    }
    if !detail.jobs.is_empty() {
        out.push('\n');
    }
    for job in &detail.jobs {
        let _ = writeln!(out, "{}  {}  {}", job.job_name, job.status, duration(job.duration_ms));
        if let Some(from) = &job.reused_from {
            let _ = writeln!(out, "  reused from run {} (not run again)", from.run_id);
        }
        if let Some(error) = &job.error_message {
            push_labelled(&mut out, "  ", "error: ", error);
        }
        for step in job.steps.iter().flatten() {
            let _ = write!(
                out,
                "  └─ {} {} {}",
                step.step_name,
                step.status,
                duration(step.duration_ms)
            );
            if let Some(code) = step.exit_code {
                let _ = write!(out, " exit={code}");
            }
            out.push('\n');
        }
    }
    out
}

/// `<indent><label><text>`, with the lines of a multi-line `text` aligned under its first.
fn push_labelled(out: &mut String, indent: &str, label: &str, text: &str) {
    let continuation = " ".repeat(indent.chars().count() + label.chars().count());
    for (index, line) in text.lines().enumerate() {
        if index == 0 {
            let _ = writeln!(out, "{indent}{label}{line}");
        } else {
            let _ = writeln!(out, "{}", format!("{continuation}{line}").trim_end());
        }
    }
}

/// What has been printed of a run's logs, so each poll prints only new lines. A step's header
/// is printed before its first lines, and again when its lines resume after another step's.
#[derive(Debug, Default)]
pub struct LogPrinter {
    printed: HashMap<(JobId, i64), usize>,
    current: Option<(JobId, i64)>,
}

impl LogPrinter {
    /// The lines of `logs` not printed yet, with headers.
    pub fn next_chunk(&mut self, logs: &RunLogs) -> String {
        let mut out = String::new();
        for step in &logs.steps {
            let key = (step.job_id.clone(), step.step_index);
            let printed = self.printed.get(&key).copied().unwrap_or(0);
            // A log never shrinks; fewer lines than printed would be a truncated answer.
            let Some(new_lines) = step.lines.get(printed..).filter(|lines| !lines.is_empty()) else {
                continue;
            };
            if self.current.as_ref() != Some(&key) {
                let _ = writeln!(out, "=== {} › {} {} ===", step.job_name, step.step_name, step.status);
                self.current = Some(key.clone());
            }
            for line in new_lines {
                out.push_str(&line.line);
                out.push('\n');
            }
            self.printed.insert(key, printed + new_lines.len());
        }
        out
    }
}

/// `{"<job>/<step>": [lines]}`; steps without lines are left out, like in the text view.
pub fn logs_json(logs: &RunLogs) -> Value {
    let mut map = Map::new();
    for step in &logs.steps {
        if step.lines.is_empty() {
            continue;
        }
        let entry = map
            .entry(format!("{}/{}", step.job_name, step.step_name))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(lines) = entry {
            lines.extend(step.lines.iter().map(|line| Value::String(line.line.clone())));
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests;
