//! `kici-admin diagnose drift`: the troubleshooting page's "which side drifted" by hand,
//! automated. It compares the `@kici-dev/sdk` bundle hash baked into the orchestrator
//! (`GET /health`), into every connected agent (their registered build info, from
//! `GET /api/v1/admin/agents`) and recorded in a lock file (`sdk.bundleHash`), names the side(s)
//! that differ from the majority (or from the orchestrator when there is none) and says how to
//! fix each. [`compare`] is the pure rule; `explain` reuses it for runs that failed with
//! `Lock file is out of date`.
//!
//! It never recomputes a hash: it only compares what each side reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use kici_client::client::ApiClient;
use kici_client::format;
use kici_client::table;
use kici_engine::api::admin::AgentList;
use kici_engine::build_info::UNKNOWN;
use kici_engine::lockfile::LOCK_FILE_NAME;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// No side differs.
pub const EXIT_NO_DRIFT: u8 = 0;
/// At least one side differs from the reference.
pub const EXIT_DRIFT: u8 = 1;

/// How many characters of a bundle hash are shown.
const HASH_PREFIX: usize = 12;

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The lock file to compare (default `.kici/kici.lock.json` when it exists here)
    #[arg(long, value_name = "PATH")]
    lock: Option<PathBuf>,
    /// Print the comparison as JSON
    #[arg(long)]
    json: bool,
}

/// `GET /health`, read leniently: only the two SDK fields matter here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    #[serde(default)]
    pub sdk_version: Option<String>,
    #[serde(default)]
    pub sdk_bundle_hash: Option<String>,
}

/// Who reported an SDK build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SideKind {
    Orchestrator,
    Agent {
        #[serde(rename = "agentId")]
        agent_id: String,
    },
    LockFile {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    #[serde(flatten)]
    pub kind: SideKind,
    pub version: Option<String>,
    pub bundle_hash: Option<String>,
}

impl Side {
    /// The bundle hash when the side reported a usable one (`unknown` is not).
    fn known_hash(&self) -> Option<&str> {
        self.bundle_hash
            .as_deref()
            .filter(|hash| !hash.is_empty() && *hash != UNKNOWN)
    }

    fn version_text(&self) -> &str {
        self.version
            .as_deref()
            .filter(|version| !version.is_empty())
            .unwrap_or(UNKNOWN)
    }

    fn table_name(&self) -> String {
        match &self.kind {
            SideKind::Orchestrator => "orchestrator".to_string(),
            SideKind::Agent { agent_id } => format!("agent {agent_id}"),
            SideKind::LockFile { path } => format!("lock file {path}"),
        }
    }

    /// How a sentence starts with this side.
    fn subject(&self) -> String {
        match &self.kind {
            SideKind::Orchestrator => "The orchestrator".to_string(),
            SideKind::Agent { agent_id } => format!("Agent {agent_id}"),
            SideKind::LockFile { .. } => "The lock file".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Drifted,
    Unknown,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Drifted => "drifted",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SideVerdict {
    #[serde(flatten)]
    pub side: Side,
    pub verdict: Verdict,
}

/// The SDK build the others are compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub version: String,
    pub bundle_hash: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub drift: bool,
    pub reference: Option<Reference>,
    pub sides: Vec<SideVerdict>,
    /// The verdict sentences, one per line.
    pub verdicts: Vec<String>,
}

impl DriftReport {
    pub fn exit_code(&self) -> u8 {
        if self.drift { EXIT_DRIFT } else { EXIT_NO_DRIFT }
    }

    /// The agents whose build matches the reference.
    fn agreeing_agents(&self) -> usize {
        self.sides
            .iter()
            .filter(|side| matches!(side.side.kind, SideKind::Agent { .. }) && side.verdict == Verdict::Ok)
            .count()
    }
}

/// Compares the sides. The reference is the bundle hash more than half of the sides that
/// reported one share; without such a majority it is the orchestrator's (or, when the
/// orchestrator reported none, the first reported one). Sides reporting no hash (`unknown`) are
/// listed but not compared.
pub fn compare(sides: Vec<Side>) -> DriftReport {
    let known: Vec<&str> = sides.iter().filter_map(Side::known_hash).collect();
    let majority = known
        .iter()
        .find(|hash| known.iter().filter(|other| other == hash).count() * 2 > known.len())
        .copied();
    let orchestrator = sides
        .iter()
        .find(|side| side.kind == SideKind::Orchestrator)
        .and_then(Side::known_hash);
    let reference_hash = majority
        .or(orchestrator)
        .or_else(|| known.first().copied())
        .map(str::to_string);
    let reference_hash = reference_hash.as_deref();
    let reference = reference_hash.map(|hash| {
        let holder = sides
            .iter()
            .filter(|side| side.known_hash() == Some(hash))
            .min_by_key(|side| !matches!(side.kind, SideKind::Orchestrator))
            .expect("the reference hash comes from a side");
        Reference {
            version: holder.version_text().to_string(),
            bundle_hash: hash.to_string(),
        }
    });
    let sides: Vec<SideVerdict> = sides
        .into_iter()
        .map(|side| {
            let verdict = match (side.known_hash(), reference_hash) {
                (None, _) | (_, None) => Verdict::Unknown,
                (Some(hash), Some(reference)) if hash == reference => Verdict::Ok,
                (Some(_), Some(_)) => Verdict::Drifted,
            };
            SideVerdict { side, verdict }
        })
        .collect();
    let mut report = DriftReport {
        drift: sides.iter().any(|side| side.verdict == Verdict::Drifted),
        reference,
        sides,
        verdicts: Vec::new(),
    };
    report.verdicts = verdicts(&report);
    report
}

fn verdicts(report: &DriftReport) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(reference) = &report.reference else {
        lines.push("Cannot compare: no side reports an @kici-dev/sdk bundle hash.".to_string());
        lines.extend(unknown_lines(report));
        return lines;
    };
    let reference_text = format!(
        "{} ({})",
        reference.version,
        format::prefix(&reference.bundle_hash, HASH_PREFIX)
    );
    let agrees = |kind: fn(&SideKind) -> bool| {
        report
            .sides
            .iter()
            .any(|side| kind(&side.side.kind) && side.verdict == Verdict::Ok)
    };
    let orchestrator_agrees = agrees(|kind| matches!(kind, SideKind::Orchestrator));
    let lock_agrees = agrees(|kind| matches!(kind, SideKind::LockFile { .. }));
    let agents_agree = report.agreeing_agents() > 0;
    if !report.drift {
        let mut parts = Vec::new();
        if orchestrator_agrees {
            parts.push("orchestrator".to_string());
        }
        parts.push(format!("{} agent(s)", report.agreeing_agents()));
        if lock_agrees {
            parts.push("the lock file".to_string());
        }
        lines.push(format!(
            "No drift: {} use @kici-dev/sdk {reference_text}.",
            join_and(&parts)
        ));
    }
    for side in report.sides.iter().filter(|side| side.verdict == Verdict::Drifted) {
        let own = format!(
            "{} ({})",
            side.side.version_text(),
            format::prefix(side.side.known_hash().unwrap_or_default(), HASH_PREFIX)
        );
        let line = match &side.side.kind {
            SideKind::Agent { agent_id } => {
                let (holder, holders) = if orchestrator_agrees {
                    ("the orchestrator", "the orchestrator's")
                } else if lock_agrees {
                    ("the lock file", "the lock file's")
                } else {
                    ("the other agents", "the other agents'")
                };
                format!(
                    "Agent {agent_id} runs @kici-dev/sdk {own}, {holder} {reference_text}: upgrade the agent's kici-agent binary (or its image) to {holders} build."
                )
            }
            SideKind::LockFile { .. } => {
                let (holder, holders) = if agents_agree {
                    ("the agents run", "the agents'")
                } else {
                    ("the orchestrator runs", "the orchestrator's")
                };
                format!(
                    "The lock file was compiled against @kici-dev/sdk {own}, {holder} {reference_text}: run 'kici compile' with a kici of {holders} build and commit the updated lock file."
                )
            }
            // The orchestrator only drifts against a majority without it, and the lock file is
            // one side: at least one agent agrees with the reference.
            SideKind::Orchestrator => format!(
                "The orchestrator runs @kici-dev/sdk {own}, the agents {reference_text}: upgrade kici-orchestrator to the agents' build."
            ),
        };
        lines.push(line);
    }
    lines.extend(unknown_lines(report));
    lines
}

pub fn unknown_lines(report: &DriftReport) -> Vec<String> {
    report
        .sides
        .iter()
        .filter(|side| side.verdict == Verdict::Unknown)
        .map(|side| {
            format!(
                "{} reports no @kici-dev/sdk bundle hash (build info unknown): investigate before trusting it.",
                side.side.subject()
            )
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The sides table and the verdict lines.
pub fn render(report: &DriftReport, indent: &str) -> String {
    let mut out = render_table(report, indent);
    out.push('\n');
    for line in &report.verdicts {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// The sides table alone.
pub fn render_table(report: &DriftReport, indent: &str) -> String {
    let rows: Vec<Vec<String>> = report
        .sides
        .iter()
        .map(|side| {
            vec![
                side.side.table_name(),
                side.side.version_text().to_string(),
                side.side
                    .bundle_hash
                    .as_deref()
                    .map_or_else(|| UNKNOWN.to_string(), |hash| format::prefix(hash, HASH_PREFIX)),
                side.verdict.as_str().to_string(),
            ]
        })
        .collect();
    table::render(indent, &["SIDE", "VERSION", "BUNDLE HASH", "VERDICT"], &rows)
}

/// The orchestrator's side, from `GET /health`.
pub async fn orchestrator_side(client: &ApiClient) -> anyhow::Result<Side> {
    let health: HealthView = client.get(&["health"], &[]).await?;
    Ok(Side {
        kind: SideKind::Orchestrator,
        version: health.sdk_version,
        bundle_hash: health.sdk_bundle_hash,
    })
}

/// The agents' sides: every connected agent, plus the agents named in `also` even when they are
/// disconnected (the agent that ran a failed job).
pub fn agent_sides(list: &AgentList, also: &[&str]) -> Vec<Side> {
    list.agents
        .iter()
        .filter(|agent| agent.connected || also.contains(&agent.agent_id.as_str()))
        .map(|agent| Side {
            kind: SideKind::Agent {
                agent_id: agent.agent_id.to_string(),
            },
            version: agent.build_info.as_ref().and_then(|build| build.sdk_version.clone()),
            bundle_hash: agent
                .build_info
                .as_ref()
                .and_then(|build| build.sdk_bundle_hash.clone()),
        })
        .collect()
}

/// The lock file's side: its `sdk` stamp. Read as plain JSON so a lock of another schema
/// version still answers.
pub fn lock_side(path: &Path) -> anyhow::Result<Side> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read lock file `{shown}`"))?;
    let lock: Value = serde_json::from_str(&text).with_context(|| format!("lock file `{shown}` is not JSON"))?;
    let stamp = |field: &str| {
        lock.get("sdk")
            .and_then(|sdk| sdk.get(field))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(bundle_hash) = stamp("bundleHash") else {
        anyhow::bail!(
            "lock file `{shown}` has no `sdk.bundleHash` stamp (hint: it was written by an older kici; run `kici compile`)"
        );
    };
    Ok(Side {
        kind: SideKind::LockFile {
            path: shown.to_string(),
        },
        version: stamp("version"),
        bundle_hash: Some(bundle_hash),
    })
}

/// `--lock`, or `.kici/kici.lock.json` when it exists in the current directory.
fn lock_path(args: &DriftArgs) -> Option<PathBuf> {
    if let Some(path) = &args.lock {
        return Some(path.clone());
    }
    let default = Path::new(".kici").join(LOCK_FILE_NAME);
    default.is_file().then_some(default)
}

pub async fn run(client: &ApiClient, args: DriftArgs) -> anyhow::Result<u8> {
    let mut sides = vec![orchestrator_side(client).await?];
    let agents: AgentList = client.get(&["api", "v1", "admin", "agents"], &[]).await?;
    sides.extend(agent_sides(&agents, &[]));
    if let Some(path) = lock_path(&args) {
        sides.push(lock_side(&path)?);
    }
    let report = compare(sides);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, ""));
    }
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn orchestrator(version: &str, hash: &str) -> Side {
        Side {
            kind: SideKind::Orchestrator,
            version: Some(version.into()),
            bundle_hash: Some(hash.into()),
        }
    }

    fn agent(id: &str, version: &str, hash: &str) -> Side {
        Side {
            kind: SideKind::Agent { agent_id: id.into() },
            version: Some(version.into()),
            bundle_hash: Some(hash.into()),
        }
    }

    fn lock(version: &str, hash: &str) -> Side {
        Side {
            kind: SideKind::LockFile {
                path: ".kici/kici.lock.json".into(),
            },
            version: Some(version.into()),
            bundle_hash: Some(hash.into()),
        }
    }

    fn check(sides: Vec<Side>, expected: &str) {
        assert_eq!(render(&compare(sides), ""), expected);
    }

    #[test]
    fn all_in_agreement() {
        check(
            vec![orchestrator("0.1.0", A), agent("agent-a", "0.1.0", A), lock("0.1.0", A)],
            "\
SIDE                            VERSION  BUNDLE HASH   VERDICT
orchestrator                    0.1.0    aaaaaaaaaaaa  ok
agent agent-a                   0.1.0    aaaaaaaaaaaa  ok
lock file .kici/kici.lock.json  0.1.0    aaaaaaaaaaaa  ok

No drift: orchestrator, 1 agent(s) and the lock file use @kici-dev/sdk 0.1.0 (aaaaaaaaaaaa).
",
        );
        let report = compare(vec![orchestrator("0.1.0", A)]);
        assert_eq!(
            report.verdicts,
            ["No drift: orchestrator and 0 agent(s) use @kici-dev/sdk 0.1.0 (aaaaaaaaaaaa)."]
        );
        assert_eq!(report.exit_code(), EXIT_NO_DRIFT);
    }

    #[test]
    fn a_stale_agent_is_named() {
        let report = compare(vec![
            orchestrator("0.2.0", A),
            agent("agent-a", "0.2.0", A),
            agent("agent-old", "0.1.0", B),
            lock("0.2.0", A),
        ]);
        assert_eq!(
            report.verdicts,
            [
                "Agent agent-old runs @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the orchestrator 0.2.0 (aaaaaaaaaaaa): upgrade the agent's kici-agent binary (or its image) to the orchestrator's build."
            ]
        );
        assert_eq!(report.exit_code(), EXIT_DRIFT);
        // One orchestrator, one agent: no majority, the orchestrator is the reference.
        let report = compare(vec![orchestrator("0.2.0", A), agent("agent-old", "0.1.0", B)]);
        assert_eq!(report.sides[1].verdict, Verdict::Drifted);
    }

    #[test]
    fn a_stale_lock_file_is_named() {
        check(
            vec![orchestrator("0.2.0", A), agent("agent-a", "0.2.0", A), lock("0.1.0", B)],
            "\
SIDE                            VERSION  BUNDLE HASH   VERDICT
orchestrator                    0.2.0    aaaaaaaaaaaa  ok
agent agent-a                   0.2.0    aaaaaaaaaaaa  ok
lock file .kici/kici.lock.json  0.1.0    bbbbbbbbbbbb  drifted

The lock file was compiled against @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the agents run 0.2.0 (aaaaaaaaaaaa): run 'kici compile' with a kici of the agents' build and commit the updated lock file.
",
        );
        let report = compare(vec![orchestrator("0.2.0", A), lock("0.1.0", B)]);
        assert_eq!(
            report.verdicts,
            [
                "The lock file was compiled against @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the orchestrator runs 0.2.0 (aaaaaaaaaaaa): run 'kici compile' with a kici of the orchestrator's build and commit the updated lock file."
            ]
        );
    }

    #[test]
    fn a_stale_orchestrator_and_unknown_sides() {
        let mut unknown = agent("agent-x", "", UNKNOWN);
        unknown.version = None;
        let report = compare(vec![
            orchestrator("0.1.0", B),
            agent("agent-a", "0.2.0", A),
            unknown,
            lock("0.2.0", A),
        ]);
        assert_eq!(
            report.verdicts,
            [
                "The orchestrator runs @kici-dev/sdk 0.1.0 (bbbbbbbbbbbb), the agents 0.2.0 (aaaaaaaaaaaa): upgrade kici-orchestrator to the agents' build.",
                "Agent agent-x reports no @kici-dev/sdk bundle hash (build info unknown): investigate before trusting it."
            ]
        );
        let report = compare(vec![Side {
            kind: SideKind::Orchestrator,
            version: None,
            bundle_hash: None,
        }]);
        assert!(!report.drift);
        assert_eq!(
            report.verdicts[0],
            "Cannot compare: no side reports an @kici-dev/sdk bundle hash."
        );
    }

    #[test]
    fn lock_stamps_are_read_from_any_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kici.lock.json");
        std::fs::write(
            &path,
            format!(r#"{{"schemaVersion": 30, "sdk": {{"version": "0.1.0", "bundleHash": "{A}"}}, "workflows": []}}"#),
        )
        .unwrap();
        let side = lock_side(&path).unwrap();
        assert_eq!(
            (side.version.as_deref(), side.bundle_hash.as_deref()),
            (Some("0.1.0"), Some(A))
        );
        std::fs::write(&path, r#"{"schemaVersion": 29, "workflows": []}"#).unwrap();
        assert_eq!(
            lock_side(&path).unwrap_err().to_string(),
            format!(
                "lock file `{}` has no `sdk.bundleHash` stamp (hint: it was written by an older kici; run `kici compile`)",
                path.display()
            )
        );
    }
}
