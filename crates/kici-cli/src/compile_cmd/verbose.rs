//! What `kici compile --verbose` prints before the result line: per workflow file, its
//! workflows with their triggers and jobs; then how long each compiler phase took.
//!
//! ```text
//! .kici/workflows/ci.ts
//!   workflow ci
//!     on: push (branches: main) | pr (target: main)
//!     job build: 2 steps, runs on linux
//!     job test: 1 step, needs build, matrix of 4, runs on linux
//! phases: stage 12 ms, describe 85 ms, generate 3 ms
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use kici_compiler::compile::PhaseTimings;
use kici_engine::lockfile::{LockFile, LockJob};

use crate::summary;

pub(super) fn render(lock: &LockFile, timings: &PhaseTimings) -> String {
    let mut out = String::new();
    let mut file: Option<&str> = None;
    for workflow in &lock.workflows {
        if file != Some(workflow.source.file.as_str()) {
            file = Some(&workflow.source.file);
            let _ = writeln!(out, "{}", workflow.source.file);
        }
        let _ = writeln!(out, "  workflow {}", workflow.name);
        let triggers: Vec<String> = workflow
            .triggers
            .iter()
            .map(kici_engine::trigger::Trigger::summary)
            .collect();
        if triggers.is_empty() {
            let _ = writeln!(out, "    on: nothing (no triggers: it never runs)");
        } else {
            let _ = writeln!(out, "    on: {}", triggers.join(" | "));
        }
        for job in &workflow.jobs {
            match job {
                LockJob::Static(job) => {
                    let _ = writeln!(out, "    job {}: {}", job.name, summary::job(job));
                }
                LockJob::Dynamic(generator) => {
                    let _ = writeln!(out, "    jobs {}: generated when the workflow runs", generator.name());
                }
            }
        }
    }
    let ms = |d: Duration| d.as_millis();
    let _ = writeln!(
        out,
        "phases: stage {} ms, describe {} ms, generate {} ms",
        ms(timings.stage),
        ms(timings.describe),
        ms(timings.generate)
    );
    out
}
