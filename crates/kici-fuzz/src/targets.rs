//! The fuzz targets: one `fn(&[u8])` per parser, each calling the code under test the way its
//! production caller does (same decode function and type, same text conversion), then the
//! pure follow-up that caller runs on a successful decode (trigger matching, matrix
//! expansion, generated-job checks, error texts). Results go through [`consume`]
//! (`black_box`, then dropped) on purpose: only a panic is a finding.
//!
//! Inputs that carry more than one argument are framed so mutations keep them readable:
//! a webhook is `<event name>\n<provider>\n<body>` ([`webhook_frame`]), a pattern case is
//! NUL-separated fields `pattern, flags, value, more patterns…` ([`pattern_fields`]).

use std::sync::LazyLock;

use kici_engine::api;
use kici_engine::description::{JobDescription, WorkflowDescription, validate_generated};
use kici_engine::event::EventEnvelope;
use kici_engine::labels::{LabelMatcher, LabelSelector, labels_fit, validate_agent_label};
use kici_engine::lockfile::{LockFile, LockJob, LockMatrix, MAX_LOCK_FILE_BYTES, StaticJob};
use kici_engine::matrix::{self, MatrixValues};
use kici_engine::pattern::{
    BranchPattern, compile_glob, compile_js_regex, glob_to_regex, matches_paths, matches_patterns,
};
use kici_engine::platform_protocol::{OrchLogsData, OrchestratorFrame, PlatformFrame, StepLogsData};
use kici_engine::protocol::{AgentMessage, OrchestratorMessage};
use kici_engine::runner_protocol::RunnerMessage;
use kici_engine::trigger::{Trigger, match_triggers};
use kici_orchestrator::providers;
use kici_orchestrator::scaler;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How the pipeline names a lock file in errors.
const LOCK_LOCATION: &str = "acme/app ref=refs/heads/main";
/// The labels a typical agent registers with.
const AGENT_LABELS: [&str; 4] = ["linux", "kici:os:linux", "kici:arch:x64", "kici:host:ci-1"];

/// Events every loaded lock file is matched against, as the pipeline would.
static EVENTS: LazyLock<Vec<EventEnvelope>> = LazyLock::new(|| {
    crate::corpus::events()
        .into_iter()
        .map(|value| serde_json::from_value(value).expect("corpus events are envelopes"))
        .collect()
});

/// The triggers of the seed lock files, matched against every normalized webhook.
static TRIGGERS: LazyLock<Vec<Vec<Trigger>>> = LazyLock::new(|| {
    crate::corpus::lock_files()
        .iter()
        .filter_map(|lock| LockFile::parse(&lock.to_string(), LOCK_LOCATION).ok())
        .flat_map(|lock| lock.workflows.into_iter().map(|workflow| workflow.triggers))
        .collect()
});

/// Keeps a result alive (`black_box`) and drops it: only a panic is a finding.
fn consume<T>(value: T) {
    std::hint::black_box(value);
}

/// Frames a webhook: event header, provider preset (as `webhook.rs` derives it), body.
pub fn webhook_frame(event_name: &str, provider: &str, body: &[u8]) -> Vec<u8> {
    let mut data = format!("{event_name}\n{provider}\n").into_bytes();
    data.extend_from_slice(body);
    data
}

/// The fields of a pattern case: pattern, flags, value, then more patterns.
pub fn pattern_fields(data: &[u8]) -> Vec<String> {
    data.split(|&byte| byte == 0)
        .map(|field| String::from_utf8_lossy(field).into_owned())
        .collect()
}

/// The lock file as the pipeline reads it at a commit (`git show`, lossy UTF-8), validated,
/// then matched against events, its static matrices expanded and its labels fitted.
pub fn lockfile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lock = match LockFile::parse(&text, LOCK_LOCATION) {
        Ok(lock) => lock,
        Err(err) => {
            consume(err.to_string());
            return;
        }
    };
    consume(lock.to_json());
    consume(LockFile::compute_content_hash(
        lock.schema_version,
        &lock.source,
        &lock.workflows,
    ));
    for workflow in &lock.workflows {
        for event in EVENTS.iter() {
            consume(match_triggers(&workflow.triggers, event));
        }
        for job in &workflow.jobs {
            consume(job.name());
            if let LockJob::Static(job) = job {
                static_job(job);
            }
        }
    }
}

/// What the pipeline and the dispatcher do with one static job.
fn static_job(job: &StaticJob) {
    consume(job.flat_steps());
    let agent_labels: Vec<String> = AGENT_LABELS.map(str::to_string).to_vec();
    consume(labels_fit(&job.runs_on, &job.exclude_labels, &agent_labels));
    for need in &job.needs {
        consume(need.run_on());
    }
    if let Some(LockMatrix::Static { values }) = &job.matrix
        && let Ok(combinations) = matrix::expand(&job.name, values, &job.include, &job.exclude)
    {
        for combination in &combinations {
            consume(matrix::child_job_name(&job.name, combination));
        }
    }
}

/// A webhook body as `http/webhook.rs` handles it: `from_slice`, `normalize`, then trigger
/// matching of the normalized event and its serialization for the store.
pub fn webhook(data: &[u8]) {
    let mut parts = data.splitn(3, |&byte| byte == b'\n');
    let event_name = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let provider = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let Ok(payload) = serde_json::from_slice::<Value>(parts.next().unwrap_or_default()) else {
        return;
    };
    match providers::normalize(&event_name, &payload, &provider) {
        Ok(normalized) => {
            for triggers in TRIGGERS.iter() {
                consume(match_triggers(triggers, &normalized.event));
            }
            consume(serde_json::to_string(&normalized.event));
        }
        Err(skip) => {
            consume(skip);
        }
    }
}

/// One WebSocket text frame, decoded as the orchestrator decodes agent messages
/// (`agents.rs`) and as the agent decodes orchestrator messages (`connection.rs`); then what
/// `agents.rs` and `progress.rs` read out of a decoded agent message.
pub fn agent_protocol(data: &[u8]) {
    text_frame::<AgentMessage, OrchestratorMessage>(data, agent_message);
}

/// Decodes a text frame as the message types of both directions of a socket (tungstenite has
/// checked that a text frame is UTF-8 by then); `inspect` sees the first type when it decodes.
fn text_frame<First: DeserializeOwned, Second: DeserializeOwned>(data: &[u8], inspect: impl FnOnce(&First)) {
    let text = String::from_utf8_lossy(data);
    match serde_json::from_str::<First>(&text) {
        Ok(message) => inspect(&message),
        Err(err) => consume(format!("invalid message: {err}")),
    }
    consume(serde_json::from_str::<Second>(&text));
}

fn agent_message(message: &AgentMessage) {
    consume(message.sequenced());
    match message {
        AgentMessage::Register(registration) => {
            for label in &registration.labels {
                consume(validate_agent_label(label));
            }
        }
        AgentMessage::JobStatus(update) => {
            if let Some(value) = &update.matrix {
                evaluated_matrix(value);
            }
            if let Some(value) = &update.jobs {
                generated_jobs(value);
            }
        }
        _ => {}
    }
}

/// A dynamic matrix's values as `progress.rs` expands them.
fn evaluated_matrix(value: &Value) {
    if let Ok(values) = serde_json::from_value::<MatrixValues>(value.clone()) {
        consume(matrix::static_upper_bound(&values, &[]));
        consume(matrix::expand("evaluate", &values, &[], &[]));
    }
}

/// A `dynamicJob()` generator's jobs as `progress.rs` turns them into job rows.
fn generated_jobs(value: &Value) {
    let Ok(descriptions) = serde_json::from_value::<Vec<JobDescription>>(value.clone()) else {
        return;
    };
    let jobs = match descriptions
        .iter()
        .map(JobDescription::to_static_job)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(jobs) => jobs,
        Err(message) => {
            consume(message);
            return;
        }
    };
    if validate_generated(&jobs, &["build", "generate"]).is_err() {
        return;
    }
    for job in &jobs {
        consume(serde_json::to_string(job));
        static_job(job);
    }
}

/// One text frame on the Platform socket: decoded as the Platform decodes orchestrator frames
/// (`kici-platform/src/ws.rs`) and as the orchestrator decodes Platform frames
/// (`platform.rs`); answers as `proxy.rs` reads them; times as the pages render them.
pub fn platform_protocol(data: &[u8]) {
    text_frame::<OrchestratorFrame, PlatformFrame>(data, orchestrator_frame);
}

fn orchestrator_frame(frame: &OrchestratorFrame) {
    match frame {
        OrchestratorFrame::ExecutionStatus(snapshot) => {
            let run = &snapshot.run;
            consume(api::format_timestamp(run.created_at));
            consume(run.duration_ms.map(api::format_duration));
            for job in &snapshot.jobs {
                consume(job.started_at.map(api::format_timestamp));
                consume(job.duration_ms.map(api::format_duration));
                for step in job.steps.iter().flatten() {
                    consume(step.duration_ms.map(api::format_duration));
                }
            }
        }
        OrchestratorFrame::RunEvent(event) => {
            consume(event.event_type.title());
            consume(api::format_timestamp(event.timestamp_ms));
        }
        OrchestratorFrame::Response { data: Some(data), .. } => {
            consume(serde_json::from_value::<StepLogsData>(data.clone()));
            consume(serde_json::from_value::<OrchLogsData>(data.clone()));
        }
        _ => {}
    }
}

/// The runner's fd-3 output as `kici-compiler/src/runner.rs` reads it: one message per line
/// (lossy UTF-8); then described workflows as the compiler reads them and evaluation results
/// as the orchestrator reads them.
pub fn runner_protocol(data: &[u8]) {
    for line in data.split(|&byte| byte == b'\n') {
        let line = String::from_utf8_lossy(line);
        match serde_json::from_str::<RunnerMessage>(&line) {
            Ok(message) => runner_message(&message),
            Err(err) => {
                consume(err.to_string());
            }
        }
    }
}

fn runner_message(message: &RunnerMessage) {
    match message {
        RunnerMessage::DescribeResult { files } => {
            for workflow in files.iter().filter_map(|file| file.workflows.as_ref()).flatten() {
                consume(serde_json::from_value::<WorkflowDescription>(workflow.clone()));
            }
        }
        RunnerMessage::EvaluateResult { value: Some(value), .. } => {
            evaluated_matrix(value);
            generated_jobs(value);
        }
        _ => {}
    }
}

/// A `scalers.yaml` text (read lossily here; the loader rejects non-UTF-8 files first), then
/// what a reload and the dispatcher do with a valid configuration.
pub fn scalers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match scaler::from_yaml_str(&text, "scalers.yaml") {
        Ok(config) => {
            consume(scaler::reload_diff(&config, &config));
            let runs_on = [LabelMatcher::exact("linux")];
            consume(scaler::route(&config, &runs_on, &[]).is_some());
        }
        Err(err) => {
            consume(err.to_string());
        }
    }
}

/// Every pattern entry point on the fields of one case.
pub fn patterns(data: &[u8]) {
    let fields = pattern_fields(data);
    let pattern = fields[0].as_str();
    let flags = fields.get(1).map_or("", String::as_str);
    let value = fields.get(2).map_or("", String::as_str);
    consume(glob_to_regex(pattern));
    consume(compile_glob(pattern).map(|regex| regex.is_match(value)));
    consume(compile_js_regex(pattern, flags).map(|regex| regex.is_match(value)));
    let selector = LabelSelector::Glob {
        pattern: pattern.to_string(),
    };
    consume(selector.to_matcher());
    let list: Vec<BranchPattern> = fields
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 1 && *index != 2)
        .map(|(index, field)| match index % 3 {
            0 => BranchPattern::glob(field),
            1 => BranchPattern::glob(&format!("!{field}")),
            _ => BranchPattern::regex(field, Some(flags)),
        })
        .collect();
    consume(matches_patterns(&list, value));
    consume(matches_paths(&fields, &[value.to_string(), pattern.to_string()]));
}

/// A trigger-matching case: triggers as a lock file stores them and an event envelope.
#[derive(Deserialize)]
struct TriggerCase {
    triggers: Vec<Trigger>,
    event: EventEnvelope,
}

/// Validation of each trigger, then `match_triggers`, validated or not.
pub fn triggers(data: &[u8]) {
    // Triggers only ever come from a lock file, and the pipeline reads none larger than this.
    if data.len() > MAX_LOCK_FILE_BYTES {
        return;
    }
    let Ok(case) = serde_json::from_slice::<TriggerCase>(data) else {
        return;
    };
    for trigger in &case.triggers {
        consume(trigger.validate());
    }
    consume(match_triggers(&case.triggers, &case.event));
}
