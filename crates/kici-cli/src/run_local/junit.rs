//! `--junit <path>`: a local run as JUnit XML, the format CI dashboards and IDEs read. One
//! `<testsuite>` per job (named `<workflow> › <job>`), one `<testcase>` per step (a job that
//! never ran is one test case of its own), with `<failure>` and `<skipped>` as the statuses say.
//! Times are in seconds.

use std::fmt::Write as _;

use kici_engine::status::{JobStatus, StepStatus};

use super::report::{JobReport, RunReport};

/// What a test case came to.
enum Outcome<'a> {
    Passed,
    Failed(&'a str),
    Skipped(&'a str),
}

struct Case<'a> {
    name: &'a str,
    class: String,
    seconds: f64,
    outcome: Outcome<'a>,
}

pub fn render(report: &RunReport) -> String {
    let mut suites = String::new();
    let (mut total, mut failed, mut skipped) = (0, 0, 0);
    for workflow in &report.workflows {
        for job in &workflow.jobs {
            let class = format!("{}.{}", workflow.name, job.name);
            let cases = cases(job, &class);
            let failures = cases.iter().filter(|c| matches!(c.outcome, Outcome::Failed(_))).count();
            let skips = cases
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
                .count();
            (total, failed, skipped) = (total + cases.len(), failed + failures, skipped + skips);
            let _ = writeln!(
                suites,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skips}\" time=\"{:.3}\">",
                escape(&format!("{} › {}", workflow.name, job.name)),
                cases.len(),
                seconds(job.duration_ms)
            );
            for case in &cases {
                let _ = write!(
                    suites,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    escape(case.name),
                    escape(&case.class),
                    case.seconds
                );
                match case.outcome {
                    Outcome::Passed => suites.push_str("/>\n"),
                    Outcome::Failed(message) => {
                        let _ = writeln!(
                            suites,
                            ">\n      <failure message=\"{0}\">{0}</failure>\n    </testcase>",
                            escape(message)
                        );
                    }
                    Outcome::Skipped(message) => {
                        let _ = writeln!(
                            suites,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            escape(message)
                        );
                    }
                }
            }
            suites.push_str("  </testsuite>\n");
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kici run local\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">\n{suites}</testsuites>\n",
        seconds(Some(report.duration_ms))
    )
}

/// A job's steps, or the job itself when it ran none.
fn cases<'a>(job: &'a JobReport, class: &str) -> Vec<Case<'a>> {
    if job.steps.is_empty() {
        let message = job.error_message.as_deref().unwrap_or_default();
        let outcome = match job.status {
            JobStatus::Success => Outcome::Passed,
            JobStatus::Skipped | JobStatus::Cancelled => Outcome::Skipped(if message.is_empty() {
                job.status.as_str()
            } else {
                message
            }),
            _ => Outcome::Failed(message),
        };
        return vec![Case {
            name: &job.name,
            class: class.to_string(),
            seconds: seconds(job.duration_ms),
            outcome,
        }];
    }
    job.steps
        .iter()
        .map(|step| Case {
            name: &step.name,
            class: class.to_string(),
            seconds: seconds(step.duration_ms),
            outcome: match step.status {
                StepStatus::Failed => Outcome::Failed(step.error_message.as_deref().unwrap_or("the step failed")),
                StepStatus::Skipped | StepStatus::Cancelled => Outcome::Skipped(step.status.as_str()),
                _ => Outcome::Passed,
            },
        })
        .collect()
}

fn seconds(ms: Option<u64>) -> f64 {
    ms.unwrap_or(0) as f64 / 1000.0
}

/// Text for an attribute or element: markup escaped, characters XML 1.0 cannot hold dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b> & \"c\" 'd'\n\u{1b}[31m"),
            "a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;&#10;[31m"
        );
    }
}
