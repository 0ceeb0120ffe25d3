//! The event a local run simulates: parsed from the command line (`push`, `pr:open`,
//! `tag:v1.0.0`, `dispatch:deploy`) and completed with what git says about the working copy
//! (branch, sha, changed files), a `--payload` and dispatch `--input`s.

use std::path::Path;

use kici_engine::event::{EventEnvelope, EventType};

/// Event names `kici run local` accepts, as listed in the unknown-event error.
pub const KNOWN_EVENTS: &str =
    "push, pr[:open|sync|close|reopen], tag[:<name>], dispatch[:<type>], kici_event[:<name>]";

/// What the user asked for, before git fills in the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub event_type: EventType,
    pub action: Option<String>,
    /// A tag name for `tag:<name>`.
    pub name: Option<String>,
}

/// Parses `push`, `pr:open`, `pull_request:synchronize`, `tag:v1`, `dispatch:deploy`.
pub fn parse(arg: &str) -> Result<EventSpec, String> {
    let (kind, detail) = match arg.split_once(':') {
        Some((kind, detail)) => (kind, Some(detail)),
        None => (arg, None),
    };
    let unknown = || format!("Unknown event name: {arg}\n  hint: known events: {KNOWN_EVENTS}");
    let spec = match kind {
        "push" if detail.is_none() => EventSpec {
            event_type: EventType::Push,
            action: None,
            name: None,
        },
        "pr" | "pull_request" => {
            let action = match detail.unwrap_or("open") {
                "open" | "opened" => "opened",
                "sync" | "synchronize" => "synchronize",
                "close" | "closed" => "closed",
                "reopen" | "reopened" => "reopened",
                _ => return Err(unknown()),
            };
            EventSpec {
                event_type: EventType::PullRequest,
                action: Some(action.to_string()),
                name: None,
            }
        }
        "tag" => EventSpec {
            event_type: EventType::Tag,
            action: None,
            name: detail.map(str::to_string),
        },
        "dispatch" => EventSpec {
            event_type: EventType::Dispatch,
            action: detail.map(str::to_string),
            name: None,
        },
        "kici_event" => EventSpec {
            event_type: EventType::KiciEvent,
            action: None,
            name: Some(detail.unwrap_or("test-event").to_string()),
        },
        _ => return Err(unknown()),
    };
    Ok(spec)
}

/// What the local repository says.
#[derive(Debug, Clone, Default)]
pub struct GitFacts {
    pub branch: Option<String>,
    pub sha: Option<String>,
    pub changed_files: Vec<String>,
    pub tag: Option<String>,
}

/// Reads branch, sha, the files of the last commit plus uncommitted changes, and an exact tag.
pub async fn git_facts(root: &Path) -> GitFacts {
    let branch = git(root, &["symbolic-ref", "--short", "-q", "HEAD"]).await;
    let sha = git(root, &["rev-parse", "-q", "--verify", "HEAD"]).await;
    let mut changed_files: Vec<String> = Vec::new();
    if sha.is_some() {
        let last_commit = git(root, &["show", "-z", "--name-only", "--pretty=format:", "HEAD"])
            .await
            .unwrap_or_default();
        changed_files.extend(last_commit.split('\0').map(|f| f.trim_matches('\n').to_string()));
    }
    let status = git(root, &["status", "--porcelain=v1", "-z", "--untracked-files=all"])
        .await
        .unwrap_or_default();
    changed_files.extend(porcelain_paths(&status));
    changed_files.retain(|f| !f.is_empty());
    changed_files.sort();
    changed_files.dedup();
    let tag = git(root, &["describe", "--tags", "--exact-match"]).await;
    GitFacts {
        branch,
        sha,
        changed_files,
        tag,
    }
}

/// Paths of `git status --porcelain=v1 -z`: `XY path\0`, renames followed by `origin\0`.
fn porcelain_paths(status: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut entries = status.split('\0');
    while let Some(entry) = entries.next() {
        let Some(path) = entry.get(3..) else { continue };
        paths.push(path.to_string());
        if entry.starts_with('R') || entry.starts_with('C') {
            // The rename's origin is the next entry.
            entries.next();
        }
    }
    paths
}

/// `git <args>` in `dir`: trimmed stdout, or `None` when git fails or is missing.
pub async fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub branch: Option<String>,
    /// The pull request's target branch (default `main`).
    pub base: Option<String>,
    pub sha: Option<String>,
    pub files: Vec<String>,
}

/// The event options `kici run local` and `kici preview` share (each has its own `--branch`
/// default).
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// Target branch of a pull request event (default: main)
    #[arg(long)]
    pub base: Option<String>,
    /// Commit sha of the event (default: HEAD)
    #[arg(long)]
    pub sha: Option<String>,
    /// Changed files of the event, for path filters (default: last commit plus uncommitted changes)
    #[arg(long = "files", value_name = "PATH")]
    pub files: Vec<String>,
}

impl EventArgs {
    /// The overrides of an event on `branch` (`None`: the current branch).
    pub fn overrides(&self, branch: Option<String>) -> Overrides {
        Overrides {
            branch,
            base: self.base.clone(),
            sha: self.sha.clone(),
            files: self.files.clone(),
        }
    }
}

/// The envelope steps will see as `ctx.event`.
pub fn envelope(spec: &EventSpec, facts: &GitFacts, overrides: &Overrides) -> EventEnvelope {
    let branch = overrides
        .branch
        .clone()
        .or_else(|| facts.branch.clone())
        .unwrap_or_else(|| "main".to_string());
    let mut event = EventEnvelope::new(spec.event_type);
    event.action = spec.action.clone();
    event.provider = Some("local".to_string());
    event.sha = overrides.sha.clone().or_else(|| facts.sha.clone());
    event.changed_files = Some(if overrides.files.is_empty() {
        facts.changed_files.clone()
    } else {
        overrides.files.clone()
    });
    match spec.event_type {
        EventType::PullRequest => {
            event.target_branch = Some(overrides.base.clone().unwrap_or_else(|| "main".to_string()));
            event.source_branch = Some(branch);
        }
        EventType::Tag => {
            event.target_branch = Some(
                spec.name
                    .clone()
                    .or_else(|| facts.tag.clone())
                    .unwrap_or_else(|| "v0.0.0-local".to_string()),
            );
        }
        _ => event.target_branch = Some(branch),
    }
    event
}

/// The `--payload` argument: JSON, or `@<file>` holding JSON (relative to `cwd`).
pub fn payload(argument: &str, cwd: &Path) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context as _;
    let (text, origin) = match argument.strip_prefix('@') {
        Some(file) => {
            let path = cwd.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the --payload file `{}`", path.display()))?;
            (text, format!("the --payload file `{file}`"))
        }
        None => (argument.to_string(), "--payload".to_string()),
    };
    serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "{origin} is not JSON: {err}\n  hint: pass a JSON object such as '{{\"ref\": \"main\"}}', or @<file>"
        )
    })
}

/// Sets `--input KEY=VALUE`s as the event's dispatch inputs, as given (strings): each matched
/// workflow's trigger then validates, coerces and defaults them as the orchestrator does. Only
/// a dispatch event has inputs.
pub fn add_inputs(event: &mut EventEnvelope, inputs: &[(String, String)]) -> anyhow::Result<()> {
    if inputs.is_empty() {
        return Ok(());
    }
    if event.event_type != EventType::Dispatch {
        anyhow::bail!(
            "--input sets dispatch inputs, but the event is {}\n  hint: kici run local dispatch --input KEY=VALUE",
            event.event_type.as_str()
        );
    }
    let given = event.dispatch_inputs.get_or_insert_with(serde_json::Map::new);
    for (key, value) in inputs {
        given.insert(key.clone(), serde_json::Value::String(value.clone()));
    }
    Ok(())
}

/// A custom event's envelope (`kici_event:<name>`): the `--payload` becomes what the step
/// emitted, as the orchestrator wraps it.
pub fn wrap_emitted(event: &mut EventEnvelope, name: &str) -> anyhow::Result<()> {
    let emitted = event.payload.take().unwrap_or_else(|| serde_json::json!({}));
    kici_engine::protocol::check_emitted(name, &emitted).map_err(|why| {
        anyhow::anyhow!("{why}\n  hint: kici run local kici_event:deployed --payload '{{\"env\": \"prod\"}}'")
    })?;
    event.action = Some(name.to_string());
    event.payload = Some(serde_json::json!({ "eventName": name, "payload": emitted, "chainDepth": 0 }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names() {
        assert_eq!(parse("push").unwrap().event_type, EventType::Push);
        assert_eq!(parse("pr:sync").unwrap().action.as_deref(), Some("synchronize"));
        assert_eq!(parse("pr").unwrap().action.as_deref(), Some("opened"));
        assert_eq!(parse("tag:v1").unwrap().name.as_deref(), Some("v1"));
        assert_eq!(parse("dispatch:deploy").unwrap().action.as_deref(), Some("deploy"));
        assert_eq!(parse("kici_event").unwrap().name.as_deref(), Some("test-event"));
        assert_eq!(parse("kici_event:deployed").unwrap().event_type, EventType::KiciEvent);
        assert_eq!(
            parse("pushh").unwrap_err(),
            format!("Unknown event name: pushh\n  hint: known events: {KNOWN_EVENTS}")
        );
    }

    #[test]
    fn inputs_are_a_dispatchs_given_inputs_and_nowhere_else() {
        let mut dispatch = EventEnvelope::new(EventType::Dispatch);
        add_inputs(&mut dispatch, &[("a".into(), "1".into()), ("b".into(), "two".into())]).unwrap();
        assert_eq!(
            dispatch.dispatch_inputs.map(serde_json::Value::Object),
            Some(serde_json::json!({"a": "1", "b": "two"}))
        );
        let mut push = EventEnvelope::new(EventType::Push);
        let err = add_inputs(&mut push, &[("b".into(), "two".into())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--input sets dispatch inputs, but the event is push\n  hint: kici run local dispatch --input KEY=VALUE"
        );
        assert!(
            payload("{nope", Path::new("."))
                .unwrap_err()
                .to_string()
                .starts_with("--payload is not JSON: key must be a string at line 1 column 2\n  hint: ")
        );
    }

    #[test]
    fn porcelain_z_paths_keep_spaces_and_skip_rename_origins() {
        assert_eq!(
            porcelain_paths(" M a b.txt\0R  new.txt\0old.txt\0?? dir/ü.ts\0"),
            ["a b.txt", "new.txt", "dir/ü.ts"]
        );
    }

    #[test]
    fn pull_requests_target_main_from_the_current_branch() {
        let facts = GitFacts {
            branch: Some("feature/x".into()),
            ..GitFacts::default()
        };
        let event = envelope(&parse("pr").unwrap(), &facts, &Overrides::default());
        assert_eq!(event.target_branch.as_deref(), Some("main"));
        assert_eq!(event.source_branch.as_deref(), Some("feature/x"));
        let push = envelope(
            &parse("push").unwrap(),
            &facts,
            &Overrides {
                branch: Some("dev".into()),
                ..Overrides::default()
            },
        );
        assert_eq!(push.target_branch.as_deref(), Some("dev"));
    }
}
