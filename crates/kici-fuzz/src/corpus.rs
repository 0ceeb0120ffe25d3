//! Seed inputs, built in code from the real shapes: lock files as `kici compile` writes them,
//! push and pull-request payloads of GitHub, Gitea, Forgejo, GitLab and local sources, every
//! message type of the three protocols, a `scalers.yaml` with every backend, and pattern
//! cases from the documented glob and regex semantics. The tests below check that each seed
//! is accepted by its parser, so mutations start from inputs that reach deep into the code.

use kici_engine::lockfile::{COMPILE_SCHEMA_VERSION, SCHEMA_VERSION};
use serde_json::{Value, json};

use crate::Target;
use crate::targets::webhook_frame;

const WORKFLOW_FILE: &str = ".kici/workflows/ci.ts";
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const OTHER_SHA: &str = "c3f5a1e0b9d8c7a6b5f4e3d2c1b0a9f8e7d6c5b4";
const BUILD_INFO_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The seed inputs of a target.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::Lockfile => lock_files().iter().map(pretty).collect(),
        Target::Webhook => webhooks(),
        Target::AgentProtocol => agent_messages().iter().map(compact).collect(),
        Target::PlatformProtocol => platform_frames().iter().map(compact).collect(),
        Target::RunnerProtocol => runner_lines(),
        Target::Scalers => scaler_files().into_iter().map(|text| text.into_bytes()).collect(),
        Target::Patterns => pattern_cases(),
        Target::Triggers => trigger_cases().iter().map(compact).collect(),
    }
}

fn compact(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("JSON values serialize")
}

fn source(export: &str) -> Value {
    json!({"file": WORKFLOW_FILE, "export": export})
}

fn glob(pattern: &str) -> Value {
    json!({"type": "glob", "pattern": pattern})
}

fn regex(pattern: &str, flags: &str) -> Value {
    json!({"type": "regex", "pattern": pattern, "flags": flags})
}

/// Every trigger type with globs, exclusions, regexes, paths and repository filters.
fn all_triggers() -> Value {
    json!([
        {"_type": "push", "branches": [glob("main"), glob("release/**"), glob("!release/wip-*"), regex("^hotfix-\\d+$", "i")],
         "paths": ["src/**/*.{ts,rs}", "!docs/**", "Cargo.*"], "repos": [glob("acme/*")]},
        {"_type": "tag", "patterns": [glob("v[0-9]*.*"), glob("{stable,beta}-*")]},
        {"_type": "pr", "events": ["opened", "synchronize", "reopened", "closed"],
         "targetBranches": [glob("main")], "sourceBranches": [glob("feature/*"), glob("!feature/tmp?")], "paths": ["src/**"]},
        {"_type": "dispatch", "types": ["deploy", "nightly"], "inputs": {"environment": {"type": "string", "default": "staging"}}}
    ])
}

fn step(name: &str, line: u32) -> Value {
    json!({"name": name, "hasOutputs": false, "sourceLocation": {"file": WORKFLOW_FILE, "line": line, "column": 9}})
}

/// Jobs with needs (plain and conditional), label matchers, a static matrix with include and
/// exclude, a dynamic matrix, retries, parallel steps, and a dynamic job generator.
fn ci_jobs() -> Value {
    json!([
        {"_type": "static", "name": "build",
         "runsOn": [{"kind": "exact", "value": "linux"}, {"kind": "regex", "source": "^kici:arch:(x64|arm64)$", "flags": ""}],
         "excludeLabels": [{"kind": "exact", "value": "slow"}], "runsOnPick": "any", "needs": [],
         "steps": [
            {"name": "compile", "hasOutputs": true, "continueOnError": false, "timeout": 600_000,
             "retry": {"maxAttempts": 3, "delayMs": 1000, "backoff": "exponential", "maxDelayMs": 30_000},
             "sourceLocation": {"file": WORKFLOW_FILE, "line": 12, "column": 9}, "hasRules": true},
            {"kind": "parallel", "name": "checks", "failFast": false, "maxParallel": 2,
             "children": [step("lint", 20), step("unit", 21)]}
         ],
         "env": {"RUST_LOG": "debug", "RETRIES": 3}, "checkout": true, "timeout": 3_600_000,
         "hasOnFailure": true, "description": "Compile and check"},
        {"_type": "static", "name": "test", "runsOn": [{"kind": "exact", "value": "kici:os:linux"}],
         "needs": ["build", {"name": "build", "runOn": ["success", "skipped"]}],
         "steps": [step("test", 30)],
         "matrix": {"_type": "static", "values": {"os": ["linux", "macos"], "node": [18, 20, 22]}},
         "include": [{"os": "windows", "node": 20}], "exclude": [{"os": "macos", "node": 18}],
         "rules": [{"_type": "dynamic", "label": "main only", "source": {"file": WORKFLOW_FILE, "index": 0}}]},
        {"_type": "static", "name": "fanout", "runsOn": [{"kind": "exact", "value": "linux"}], "needs": ["test"],
         "steps": [step("run", 40)],
         "matrix": {"_type": "dynamic", "source": {"file": WORKFLOW_FILE, "jobName": "fanout"}}},
        {"_type": "static", "name": "list", "runsOn": [{"kind": "exact", "value": "linux"}], "needs": [],
         "steps": [step("each", 44)], "matrix": {"_type": "static", "values": ["a", "b", "c"]}},
        {"_type": "dynamic", "source": {"file": WORKFLOW_FILE, "index": 4}, "group": "packages",
         "needs": ["build", {"name": "test", "runOn": ["failed"]}]}
    ])
}

/// Lock files as `kici compile` writes them: a one-job workflow, and a file with every
/// trigger, job and step shape.
pub fn lock_files() -> Vec<Value> {
    let sdk = json!({"version": "0.1.0", "bundleHash": BUILD_INFO_HASH});
    let small = json!({
        "schemaVersion": SCHEMA_VERSION, "source": source("#default"), "contentHash": "aa", "sdk": sdk,
        "workflows": [{
            "name": "ci", "source": source("#default"), "contentHash": "bb",
            "compileSchemaVersion": COMPILE_SCHEMA_VERSION,
            "triggers": [{"_type": "push", "branches": [glob("main")], "paths": []}],
            "jobs": [{"_type": "static", "name": "build", "runsOn": [{"kind": "exact", "value": "linux"}],
                      "runsOnPick": "deterministic", "needs": [], "steps": [step("build", 7)]}]
        }]
    });
    let rich = json!({
        "schemaVersion": SCHEMA_VERSION, "source": source("#default"), "contentHash": SHA,
        "lockfileHash": OTHER_SHA, "sdk": sdk,
        "workflows": [
            {"name": "ci", "source": source("#default[0]"), "contentHash": SHA,
             "compileSchemaVersion": COMPILE_SCHEMA_VERSION, "triggers": all_triggers(), "jobs": ci_jobs(),
             "description": "Build and test", "hashFiles": ["package.json", "src/**/*.ts"],
             "resolvedHashFiles": ["package.json", "src/a.ts"]},
            {"name": "release", "source": source("#release"), "contentHash": OTHER_SHA,
             "compileSchemaVersion": COMPILE_SCHEMA_VERSION,
             "triggers": [{"_type": "tag", "patterns": [glob("v*")]}],
             "jobs": [{"_type": "static", "name": "publish", "runsOn": [], "needs": [], "steps": [step("publish", 60)]}]}
        ]
    });
    vec![small, rich]
}

/// Event envelopes of every type, as providers normalize them.
pub fn events() -> Vec<Value> {
    vec![
        json!({"type": "push", "targetBranch": "main", "sha": SHA, "provider": "github", "sourceRepo": "acme/app",
               "changedFiles": ["src/lib.rs", "docs/a.md"], "payload": {"ref": "refs/heads/main"}}),
        json!({"type": "push", "targetBranch": "release/1.2", "sha": SHA, "changedFiles": []}),
        json!({"type": "pull_request", "action": "opened", "targetBranch": "main", "sourceBranch": "feature/x",
               "sha": SHA, "provider": "gitlab", "sourceRepo": "group/app", "changedFiles": ["src/main.ts"]}),
        json!({"type": "tag", "targetBranch": "v1.2.3", "sha": SHA}),
        json!({"type": "dispatch", "action": "deploy", "targetBranch": "main", "payload": {"environment": "prod"}}),
        json!({"type": "schedule"}),
    ]
}

fn trigger_cases() -> Vec<Value> {
    events()
        .into_iter()
        .map(|event| json!({"triggers": all_triggers(), "event": event}))
        .collect()
}

fn github_repository() -> Value {
    json!({"id": 1296269, "name": "app", "full_name": "acme/app", "private": false,
           "owner": {"login": "acme", "id": 1}, "html_url": "https://github.com/acme/app",
           "clone_url": "https://github.com/acme/app.git", "default_branch": "main"})
}

fn commit(id: &str, added: &[&str], modified: &[&str], removed: &[&str]) -> Value {
    json!({"id": id, "message": "Update", "timestamp": "2026-01-02T03:04:05Z",
           "author": {"name": "Dev", "email": "dev@example.com"},
           "added": added, "modified": modified, "removed": removed})
}

fn github_push(git_ref: &str, after: &str) -> Value {
    json!({"ref": git_ref, "before": OTHER_SHA, "after": after, "created": false, "deleted": false, "forced": false,
           "compare": "https://github.com/acme/app/compare/c3f5a1e0b9d8...6dcb09b5b578",
           "repository": github_repository(), "pusher": {"name": "dev", "email": "dev@example.com"},
           "sender": {"login": "dev", "id": 2},
           "commits": [commit(SHA, &["src/new.rs"], &["src/lib.rs"], &[]), commit(OTHER_SHA, &[], &["README.md"], &["old.txt"])],
           "head_commit": commit(SHA, &["src/new.rs"], &["src/lib.rs"], &[])})
}

fn github_pull_request(action: &str) -> Value {
    json!({"action": action, "number": 42,
           "pull_request": {"id": 7, "number": 42, "state": "open", "title": "Add feature", "draft": false,
                            "head": {"ref": "feature/x", "sha": SHA, "repo": github_repository()},
                            "base": {"ref": "main", "sha": OTHER_SHA, "repo": github_repository()}},
           "repository": github_repository(), "sender": {"login": "dev", "id": 2}})
}

fn gitlab_project() -> Value {
    json!({"id": 15, "name": "app", "path_with_namespace": "group/app", "default_branch": "main",
           "git_http_url": "https://gitlab.example.com/group/app.git",
           "git_ssh_url": "git@gitlab.example.com:group/app.git", "web_url": "https://gitlab.example.com/group/app"})
}

fn gitlab_push(kind: &str, git_ref: &str) -> Value {
    json!({"object_kind": kind, "event_name": kind, "before": OTHER_SHA, "after": SHA, "ref": git_ref,
           "checkout_sha": SHA, "user_username": "dev", "project_id": 15, "project": gitlab_project(),
           "commits": [commit(SHA, &["a.ts"], &["b.ts"], &["c.ts"])], "total_commits_count": 1})
}

fn gitlab_merge_request(action: &str) -> Value {
    json!({"object_kind": "merge_request", "event_type": "merge_request", "user": {"username": "dev"},
           "project": gitlab_project(),
           "object_attributes": {"iid": 3, "action": action, "state": "opened", "source_branch": "feature/x",
                                 "target_branch": "main", "last_commit": {"id": SHA, "message": "Fix"},
                                 "source": gitlab_project(), "target": gitlab_project()}})
}

/// Push, tag, deletion and pull-request deliveries of every provider preset.
fn webhooks() -> Vec<Vec<u8>> {
    let zero = "0000000000000000000000000000000000000000";
    let mut deleted = github_push("refs/heads/old", zero);
    deleted["deleted"] = json!(true);
    let cases: Vec<(&str, &str, Value)> = vec![
        ("push", "github", github_push("refs/heads/main", SHA)),
        ("push", "github", github_push("refs/tags/v1.2.3", SHA)),
        ("push", "github", deleted),
        ("pull_request", "github", github_pull_request("opened")),
        ("push", "gitea", github_push("refs/heads/release/1.2", SHA)),
        ("pull_request", "gitea", github_pull_request("synchronize")),
        ("push", "forgejo", github_push("refs/heads/main", SHA)),
        ("pull_request", "forgejo", github_pull_request("closed")),
        ("Push Hook", "gitlab", gitlab_push("push", "refs/heads/main")),
        ("Tag Push Hook", "gitlab", gitlab_push("tag_push", "refs/tags/v2.0.0")),
        ("Merge Request Hook", "gitlab", gitlab_merge_request("open")),
        ("Merge Request Hook", "gitlab", gitlab_merge_request("merge")),
        (
            "push",
            "local",
            json!({"ref": "refs/heads/main", "before": OTHER_SHA, "after": SHA,
                                 "repository": {"full_name": "local-app", "clone_url": "file:///srv/git/app.git"},
                                 "commits": [commit(SHA, &["x"], &[], &[])]}),
        ),
        ("issues", "github", json!({"action": "opened", "issue": {"number": 1}})),
    ];
    cases
        .into_iter()
        .map(|(event_name, provider, body)| webhook_frame(event_name, provider, &compact(&body)))
        .collect()
}

fn build_info() -> Value {
    json!({"sdkVersion": "0.1.0", "sdkBundleHash": BUILD_INFO_HASH, "sharedVersion": "0.1.0",
           "sharedBundleHash": BUILD_INFO_HASH, "engineVersion": "0.1.0", "engineBundleHash": BUILD_INFO_HASH})
}

/// A `dynamicJob()` generator's result, as the agent reports it in `job.status`.
fn generated_jobs() -> Value {
    json!([
        {"name": "pkg-a", "runsOn": [{"kind": "glob", "pattern": "linux-*"}], "needs": ["build", {"name": "build", "when": "always"}],
         "steps": [{"name": "test", "hasOutputs": false}],
         "matrix": {"_type": "static", "values": {"node": [20, 22]}}, "env": {"PKG": "a"}, "timeout": 60_000},
        {"name": "pkg-b", "runsOn": [{"kind": "regex", "source": "^linux$", "flags": "i"}],
         "excludeLabels": [{"kind": "exact", "value": "gpu"}], "needs": [{"name": "pkg-a", "when": ["success", "skipped"]}],
         "steps": [{"kind": "parallel", "name": "both", "failFast": true, "children": [{"name": "x", "hasOutputs": false}]}]}
    ])
}

fn job_dispatch() -> Value {
    json!({"type": "job.dispatch", "runId": "run-1", "jobId": "job-1", "repoUrl": "https://github.com/acme/app.git",
           "gitRef": "refs/heads/main", "sha": SHA,
           "jobConfig": {"kind": "execute", "workflowName": "ci", "workflowFile": WORKFLOW_FILE, "contentHash": SHA,
                         "resolvedHashFiles": ["package.json"], "jobName": "test", "displayName": "test (linux, 20)",
                         "matrix": {"os": "linux", "node": 20}, "timeoutMs": 60_000, "dynamicIndex": 4,
                         "env": {"KICI_RUN_ID": "run-1"}},
           "event": events()[0], "needs": {"build": {"status": "success"}}, "timestamp": 1_767_225_600_000_i64})
}

/// Every message of the orchestrator ⇄ agent protocol, both directions.
fn agent_messages() -> Vec<Value> {
    let job = json!({"runId": "run-1", "jobId": "job-1"});
    let with = |extra: Value| {
        let mut message = job.clone();
        for (key, value) in extra.as_object().expect("an object") {
            message[key] = value.clone();
        }
        message
    };
    vec![
        json!({"type": "auth.request", "token": "kat_0123456789abcdef", "protocolVersion": 2}),
        json!({"type": "agent.register", "agentId": "agent-1", "labels": ["linux", "gpu", "kici:os:linux"],
               "platform": "linux", "arch": "x64", "hostname": "ci-1", "version": "0.1.0", "buildInfo": build_info(),
               "inFlightJobs": [job]}),
        json!({"type": "heartbeat", "timestamp": 1_767_225_600_000_i64}),
        with(json!({"type": "job.heartbeat", "timestamp": 1})),
        json!({"type": "agent.status", "agentId": "agent-1", "activeJobs": 1, "draining": false}),
        with(json!({"type": "job.ack", "seq": 1, "timestamp": 2})),
        with(json!({"type": "job.reject", "reason": "busy"})),
        with(json!({"type": "job.status", "seq": 2, "state": "running", "timestamp": 3})),
        with(
            json!({"type": "job.status", "seq": 9, "state": "success", "timestamp": 4, "durationMs": 1200,
                    "matrix": {"os": ["linux", "macos"], "node": [20, 22]}}),
        ),
        with(json!({"type": "job.status", "seq": 9, "state": "success", "timestamp": 4, "jobs": generated_jobs()})),
        with(json!({"type": "job.status", "seq": 9, "state": "failed", "timestamp": 4, "error": "exit code 1"})),
        with(
            json!({"type": "step.status", "seq": 3, "stepIndex": 0, "stepName": "compile", "stepType": "step",
                    "state": "failed", "timestamp": 5, "exitCode": 2, "durationMs": 30, "error": "boom"}),
        ),
        with(
            json!({"type": "log.chunk", "seq": 4, "stepIndex": -1, "lines": [{"ts": 6, "line": "hello"}, {"ts": 7, "line": ""}]}),
        ),
        json!({"type": "auth.success", "connectionId": "conn-1"}),
        json!({"type": "auth.failure", "reason": "invalid token"}),
        json!({"type": "register.ack", "agentId": "agent-1", "labels": ["linux"]}),
        job_dispatch(),
        with(json!({"type": "job.cancel", "reason": "cancelled by dev", "force": false})),
        json!({"type": "ack", "jobId": "job-1", "seq": 4}),
        json!({"type": "error", "code": "invalid_message", "message": "unknown type"}),
    ]
}

fn api_run() -> Value {
    json!({"runId": "run-1", "workflowName": "ci", "status": "failed", "repo": "acme/app", "gitRef": "refs/heads/main",
           "sha": SHA, "trigger": "push", "provider": "github", "sourceId": "src-1", "deliveryId": "src-1:d-1",
           "failureReason": "job_failed", "initFailure": {"scope": "run", "category": "lock_resolution", "message": "bad lock"},
           "createdAt": 1_767_225_600_000_i64, "startedAt": 1_767_225_601_000_i64, "completedAt": 1_767_225_700_000_i64,
           "durationMs": 99_000})
}

fn api_job() -> Value {
    json!({"jobId": "job-1", "runId": "run-1", "jobName": "test (linux)", "baseJobName": "test", "status": "failed",
           "agentId": "agent-1", "errorMessage": "exit code 1", "initFailure": null,
           "needs": [{"upstreamName": "build", "runOn": ["success"]}],
           "createdAt": 1, "startedAt": 2, "completedAt": 3, "durationMs": 1,
           "steps": [{"stepIndex": 0, "stepName": "test", "stepType": "step", "status": "failed", "exitCode": 1,
                      "errorMessage": "exit code 1", "startedAt": 2, "completedAt": 3, "durationMs": 1}]})
}

/// Every frame of the orchestrator ⇄ Platform protocol, both directions.
fn platform_frames() -> Vec<Value> {
    let request = |kind: &str, extra: Value| {
        let mut frame = json!({"type": "request", "requestId": "req-1", "actor": "admin", "request": kind});
        for (key, value) in extra.as_object().expect("an object") {
            frame[key] = value.clone();
        }
        frame
    };
    vec![
        json!({"type": "auth.request", "token": "kici_ok_0123", "protocolVersion": 1,
               "supportedDashboardRequests": ["dashboard.step.logs", "run.cancel.request"]}),
        json!({"type": "source.register", "instanceId": "orch:4000", "version": "0.1.0", "url": "http://127.0.0.1:4000"}),
        json!({"type": "execution.status", "run": api_run(), "jobs": [api_job()]}),
        json!({"type": "run.event", "eventId": "ev-1", "runId": "run-1", "jobId": "job-1", "eventType": "scaler.failed",
               "title": "Provisioning failed", "sourceService": "orchestrator", "timestampMs": 5, "metadata": {"scaler": "bm"}}),
        json!({"type": "log.chunk", "runId": "run-1", "jobId": "job-1", "stepIndex": 0, "lines": [{"ts": 1, "line": "hi"}]}),
        json!({"type": "heartbeat", "timestamp": 9}),
        json!({"type": "response", "requestId": "req-1", "data": {"lines": [{"ts": 1, "line": "hi"}], "totalLines": 1}}),
        json!({"type": "response", "requestId": "req-2", "data": {"lines": [{"ts": 1, "phase": "spawn", "eventType": "scaler.ready",
               "message": "Agent started", "agentId": "agent-1"}], "totalLines": 1}}),
        json!({"type": "response", "requestId": "req-3", "error": {"code": "not_found", "message": "no such run"}}),
        json!({"type": "auth.success", "connectionId": "c-1"}),
        json!({"type": "auth.failure", "reason": "revoked"}),
        request(
            "dashboard.step.logs",
            json!({"runId": "run-1", "jobId": "job-1", "stepIndex": 0}),
        ),
        request("dashboard.orch.logs", json!({"runId": "run-1", "jobId": "job-1"})),
        request("run.cancel.request", json!({"runId": "run-1", "force": true})),
        request("run.rerun.request", json!({"runId": "run-1"})),
        request("dashboard.fleet", json!({})),
        request("dashboard.diagnostics", json!({})),
        request("dashboard.held-runs", json!({"status": "pending", "runId": "run-1"})),
        request(
            "dashboard.held-runs.approve",
            json!({"runId": "run-1", "job": "deploy"}),
        ),
        request(
            "dashboard.held-runs.reject",
            json!({"runId": "run-1", "job": "job-1", "reason": "freeze week"}),
        ),
    ]
}

/// Runner output lines: every message type, plus a whole `describe` session on one input.
fn runner_lines() -> Vec<Vec<u8>> {
    let workflow = json!({"name": "ci", "export": "#default", "location": {"file": WORKFLOW_FILE, "line": 4, "column": 16},
        "triggers": all_triggers(),
        "jobs": [
            {"name": "build", "location": {"file": WORKFLOW_FILE, "line": 9, "column": 3},
             "runsOn": [{"kind": "exact", "value": "linux"}, {"kind": "glob", "pattern": "gpu-*"}], "runsOnPick": "deterministic",
             "needs": [], "steps": [{"name": "compile", "hasOutputs": false}], "matrix": {"_type": "dynamic"}},
            {"_type": "dynamic", "index": 1, "group": "pkgs", "needs": ["build", {"name": "build", "when": "always"}]}
        ],
        "rules": [{"label": "main only"}], "hashFiles": ["package.json"], "hasCleanup": true, "timeout": 600_000});
    let messages = vec![
        json!({"type": "ready"}),
        json!({"type": "describe.result", "files": [
            {"file": WORKFLOW_FILE, "workflows": [workflow]},
            {"file": ".kici/workflows/b.ts", "error": {"message": "Job \"x\": one of runsOn or runsOnAll is required",
             "location": {"file": ".kici/workflows/b.ts", "line": 3, "column": 7}, "suggestion": "add runsOn", "stack": "Error: …"}}]}),
        json!({"type": "evaluate.result", "value": {"os": ["linux"], "node": ["18", "20"]}}),
        json!({"type": "evaluate.result", "value": generated_jobs()}),
        json!({"type": "evaluate.result", "error": {"message": "matrix threw", "stack": "at x"}}),
        json!({"type": "step.start", "stepIndex": 1, "stepName": "lint", "stepType": "step", "state": "running",
               "concurrencyKind": "parallel", "groupId": "g1", "groupName": "checks"}),
        json!({"type": "log.line", "stepIndex": 1, "stream": "stderr", "line": "warning: unused", "level": "warn"}),
        json!({"type": "step.complete", "stepIndex": 1, "stepName": "lint", "status": "failed", "durationMs": 12, "attempts": 2,
               "error": {"message": "exit 1", "exitCode": 1, "signal": "SIGTERM"}}),
        json!({"type": "job.complete", "status": "failed", "durationMs": 40, "error": "step lint failed"}),
        json!({"type": "telemetry", "future": true}),
    ];
    let mut lines: Vec<Vec<u8>> = messages.iter().map(compact).collect();
    lines.push(lines.join(&b'\n'));
    lines
}

/// `scalers.yaml` files: every backend with its fields, and a minimal one.
fn scaler_files() -> Vec<String> {
    let full = r#"# Scalers of the CI cluster.
version: 1
globalMaxAgents: 12
globalResourceCap: {maxCpu: 32, maxMemory: 128g}
machinePools:
  - name: rack-1
    cap: {maxCpu: 16, maxMemory: 64g}
firecracker: {cidr: 10.20.0.0/24, bridgeName: kici0}
scalers:
  - name: podman
    type: container
    maxAgents: 6
    runtime: podman
    host: unix:///run/podman/podman.sock
    networkIsolation: false
    orchestratorUrl: ws://10.0.0.2:4000/ws
    warmPool: {enabled: true, size: 1, idleTimeoutSeconds: 120}
    resourceCap: {maxMemory: 16g}
    machinePool: rack-1
    labelSets:
      - labels: [container, linux]
        image: ghcr.io/acme/kici-agent:1
        imagePullPolicy: IfNotPresent
        volumes: ['/srv/cache:/cache:ro']
        env: {RUST_LOG: info, WORKERS: 2}
        networkPolicy: {allowlist: [10.0.0.0/8, 'fd00::/8'], denyAll: false}
  - name: metal
    type: bare-metal
    maxAgents: 2
    roles: all
    labelSets:
      - {labels: [metal, gpu], binaryPath: /opt/kici/kici-agent}
  - name: vms
    type: firecracker
    maxAgents: 3
    firecrackerPath: /opt/fc/firecracker
    jailerPath: /opt/fc/jailer
    kernelPath: /srv/fc/vmlinux
    uid: 900
    gid: 900
    labelSets:
      - {labels: [vm], rootfsPath: /srv/fc/rootfs.ext4, vcpuCount: 2, memSizeMib: 2048}
"#;
    let minimal = "version: 1\nscalers:\n  - {name: local, type: bare-metal, maxAgents: 1, labelSets: [{labels: [linux], binaryPath: /usr/bin/kici-agent}]}\n";
    vec![
        full.to_string(),
        minimal.to_string(),
        "version: 1\nscalers: []\n".to_string(),
    ]
}

/// Pattern cases: `pattern\0flags\0value\0more patterns…`.
fn pattern_cases() -> Vec<Vec<u8>> {
    let cases: [&[&str]; 12] = [
        &["main", "", "main"],
        &["release/*", "", "release/1.2", "!release/wip"],
        &["feature/**", "", "feature/a/b"],
        &["src/**/*.rs", "", "src/a/b/c.rs", "!src/gen/**"],
        &["v?.0", "", "v1.0"],
        &["v[!0-9].x", "", "vx.x", "v[0-9]*"],
        &["{main,develop,release/{1,2}.*}", "", "release/2.0"],
        &["a\\*b", "", "a*b"],
        &["^release-\\d+$", "i", "RELEASE-12"],
        &["(?:x|y)+z", "gimsuyd", "xyz"],
        &["**", "", ""],
        &["gpu-*", "", "gpu-a100", "linux"],
    ];
    cases.iter().map(|fields| fields.join("\0").into_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use kici_engine::lockfile::LockFile;
    use kici_engine::platform_protocol::{OrchestratorFrame, PlatformFrame};
    use kici_engine::protocol::{AgentMessage, OrchestratorMessage};
    use kici_engine::runner_protocol::RunnerMessage;
    use kici_orchestrator::providers::{Skip, normalize};

    use super::*;

    #[test]
    fn lock_files_load() {
        for lock in lock_files() {
            LockFile::parse(&lock.to_string(), "seed").unwrap();
        }
    }

    #[test]
    fn webhooks_normalize_or_are_ignored() {
        for frame in webhooks() {
            let text = String::from_utf8(frame).unwrap();
            let mut parts = text.splitn(3, '\n');
            let (event, provider) = (parts.next().unwrap(), parts.next().unwrap());
            let body: Value = serde_json::from_str(parts.next().unwrap()).unwrap();
            match normalize(event, &body, provider) {
                Ok(_) | Err(Skip::Ignored(_)) => {}
                Err(invalid) => panic!("{event} from {provider}: {invalid:?}"),
            }
        }
    }

    #[test]
    fn protocol_messages_decode() {
        for message in agent_messages() {
            let text = message.to_string();
            let agent = serde_json::from_str::<AgentMessage>(&text).is_ok();
            let orchestrator = serde_json::from_str::<OrchestratorMessage>(&text).is_ok();
            assert!(agent || orchestrator, "{text}");
        }
        for frame in platform_frames() {
            let text = frame.to_string();
            let orchestrator = serde_json::from_str::<OrchestratorFrame>(&text).is_ok();
            let platform = serde_json::from_str::<PlatformFrame>(&text).is_ok();
            assert!(orchestrator || platform, "{text}");
        }
        for line in runner_lines() {
            for line in line.split(|&b| b == b'\n') {
                serde_json::from_slice::<RunnerMessage>(line).unwrap();
            }
        }
    }

    #[test]
    fn generated_jobs_and_described_workflows_are_valid() {
        let jobs: Vec<kici_engine::description::JobDescription> = serde_json::from_value(generated_jobs()).unwrap();
        for job in &jobs {
            job.to_static_job().unwrap();
        }
        let described = &runner_lines()[1];
        let RunnerMessage::DescribeResult { files } = serde_json::from_slice(described).unwrap() else {
            panic!("a describe result")
        };
        for workflow in files[0].workflows.as_ref().unwrap() {
            serde_json::from_value::<kici_engine::description::WorkflowDescription>(workflow.clone()).unwrap();
        }
    }

    #[test]
    fn scaler_files_are_valid() {
        for text in scaler_files() {
            kici_orchestrator::scaler::from_yaml_str(&text, "scalers.yaml").unwrap();
        }
    }

    #[test]
    fn trigger_cases_decode_and_match() {
        let triggers: Vec<kici_engine::trigger::Trigger> = serde_json::from_value(all_triggers()).unwrap();
        for event in events() {
            let event = serde_json::from_value(event).unwrap();
            kici_engine::trigger::match_triggers(&triggers, &event).unwrap();
        }
    }
}
