//! The documentation cannot lie.
//!
//! - **The troubleshooting page** (`docs/troubleshooting.md`). Its `console` blocks run against
//!   real stacks, each set up as the `<!-- scenario: … -->` comment before it says, and every
//!   line of output a block shows must appear in what the commands printed, in order. Every
//!   `text` block is a text a scenario produced. Every `kici`/`kici-admin` command the prose
//!   names runs too, and succeeds, unless a block already runs it. In the page, `<name>` stands
//!   for a value of the scenario (a run id, the database URL) in commands, and for any text in
//!   output; `…` stands for any text, and a line of `…` alone for any lines.
//! - **The configuration reference** (`docs/configuration.md`) is generated from each service's
//!   schema (`VARS`, which its typo catcher knows), and every default the schema states for a
//!   value the service parses is the default its code reads. `KICI_UPDATE_DOCS=1` rewrites the
//!   page.

// Helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use kici_engine::status::RunStatus;
use kici_testkit::{Repo, Stack};

const PAGE: &str = "docs/troubleshooting.md";
const FIXTURE: &str = "tests/e2e-repo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Console,
    Text,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    scenario: String,
    /// Where it starts in the page (1-based), for messages.
    line: usize,
    lines: Vec<String>,
}

/// A command the prose names (an inline code span starting `kici ` or `kici-admin `).
#[derive(Debug)]
struct Mention {
    scenario: String,
    line: usize,
    command: String,
}

fn parse(page: &str) -> (Vec<Block>, Vec<Mention>) {
    let mut blocks = Vec::new();
    let mut mentions = Vec::new();
    let mut scenario = String::new();
    let mut open: Option<Block> = None;
    for (index, line) in page.lines().enumerate() {
        let number = index + 1;
        if let Some(block) = open.as_mut() {
            if line.starts_with("```") {
                blocks.push(open.take().expect("an open block"));
            } else {
                block.lines.push(line.to_string());
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("<!-- scenario: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            scenario = name.to_string();
        } else if let Some(info) = line.strip_prefix("```") {
            let kind = match info {
                "console" => Some(Kind::Console),
                "text" => Some(Kind::Text),
                _ => None,
            };
            let kind = kind.unwrap_or_else(|| panic!("{PAGE}:{number}: a block is `console` or `text`, not `{info}`"));
            open = Some(Block {
                kind,
                scenario: scenario.clone(),
                line: number,
                lines: Vec::new(),
            });
        } else {
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 1 && (span.starts_with("kici ") || span.starts_with("kici-admin ")) {
                    mentions.push(Mention {
                        scenario: scenario.clone(),
                        line: number,
                        command: span.to_string(),
                    });
                }
            }
        }
    }
    assert!(open.is_none(), "{PAGE}: a block is not closed");
    (blocks, mentions)
}

/// A line of the page as a pattern: `<name>` and `…` match any text.
fn pattern(line: &str) -> regex::Regex {
    pattern_with(line, &BTreeMap::new())
}

/// [`pattern`], where a `<name>` of `known` stands for its value only.
fn pattern_with(line: &str, known: &BTreeMap<&'static str, String>) -> regex::Regex {
    let mut text = String::from("^");
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('…') {
            text.push_str(".*");
            rest = after;
        } else if let Some(end) = rest.strip_prefix('<').and_then(|after| {
            after
                .find('>')
                .filter(|end| after[..*end].chars().all(|c| c.is_ascii_alphanumeric()))
        }) {
            match known.get(&rest[1..=end]) {
                Some(value) => text.push_str(&regex::escape(value)),
                None => text.push_str(".+?"),
            }
            rest = &rest[end + 2..];
        } else {
            let c = rest.chars().next().expect("a char");
            text.push_str(&regex::escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    text.push('$');
    regex::Regex::new(&text).expect("a pattern")
}

/// Whether `expected` lines appear in `actual`, in order (a line of `…` alone skips any).
fn shows(expected: &[String], actual: &str) -> Result<(), String> {
    shows_with(expected, actual, &BTreeMap::new())
}

/// [`shows`], with the `known` values of placeholders.
fn shows_with(expected: &[String], actual: &str, known: &BTreeMap<&'static str, String>) -> Result<(), String> {
    let mut lines = actual.lines();
    for want in expected.iter().filter(|l| l.as_str() != "…") {
        let matcher = pattern_with(want, known);
        if !lines.any(|line| matcher.is_match(line)) {
            return Err(want.clone());
        }
    }
    Ok(())
}

/// A command's words up to its first placeholder or flag: `kici-admin runs show`.
fn command_path(command: &str) -> Vec<String> {
    command
        .split_whitespace()
        .take_while(|w| !w.starts_with('<') && !w.starts_with('-'))
        .map(str::to_string)
        .collect()
}

/// A stack set up for the page's examples, with the values its commands name.
struct Scenario {
    stack: Stack,
    cwd: PathBuf,
    vars: BTreeMap<&'static str, String>,
    /// Texts it produced beyond the commands' output (failure reasons, job errors).
    texts: Vec<String>,
    _repo: Repo,
}

impl Scenario {
    fn run(&self, command: &str) -> (i32, String) {
        let mut words: Vec<String> = Vec::new();
        for word in command.split_whitespace() {
            let value = word.strip_prefix('<').and_then(|w| w.strip_suffix('>')).map(|name| {
                self.vars
                    .get(name)
                    .unwrap_or_else(|| panic!("`{command}` names <{name}>, which the scenario does not have"))
                    .clone()
            });
            words.push(value.unwrap_or_else(|| word.to_string()));
        }
        let binary = words.remove(0);
        assert!(
            binary == "kici" || binary == "kici-admin",
            "`{command}`: the page may run kici and kici-admin commands only"
        );
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let output = self.stack.cli(&binary, &args, &self.cwd);
        (output.code, format!("{}{}", output.stdout, output.stderr))
    }
}

/// A push of branch `branch`, once its run ended; the run detail's texts join the scenario's.
async fn pushed(stack: &Stack, repo: &Repo, branch: &str, texts: &mut Vec<String>) -> String {
    let detail = stack.push_and_wait("app", repo, branch).await;
    assert_eq!(detail.run.status, RunStatus::Failed, "{detail:#?}");
    texts.extend(detail.run.failure_reason.clone());
    texts.extend(detail.jobs.iter().filter_map(|j| j.error_message.clone()));
    detail.run.run_id.to_string()
}

/// What an orchestrator prints when it starts on a database a newer build migrated: one whose
/// migration ledger has a migration this build does not know.
fn started_on_a_newer_database(stack: &Stack) -> String {
    let dir = stack.dir.path().join("newer");
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE kici_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)'); c.execute(\"INSERT INTO kici_migrations VALUES (9999, 'future', 0)\"); c.commit()",
        ])
        .arg(dir.join("kici.db"))
        .status()
        .unwrap();
    assert!(made.success());
    let (code, output) = kici_testkit::run_to_end(
        Command::new(kici_testkit::binary("kici-orchestrator"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KICI_DATA_DIR", &dir)
            .env("KICI_PORT", "0"),
    );
    assert_ne!(code, 0, "an orchestrator started on a newer database");
    output
}

async fn scenario(name: &str) -> Scenario {
    let mut texts = Vec::new();
    let mut vars = BTreeMap::new();
    let (stack, repo) = match name {
        // An agent and a run whose step `compile` exits 3.
        "failed-step" => {
            let mut stack = Stack::start().await;
            stack.start_agent("agent-1", &["linux"]).await;
            let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
            stack.add_local_source("app", &repo).await;
            vars.insert("runId", pushed(&stack, &repo, "failing", &mut texts).await);
            (stack, repo)
        }
        // No agent fits the job, and its queue timeout is short.
        "no-agent" => {
            let stack = Stack::start_with(&[("KICI_QUEUE_TIMEOUT_MS", "1000")]).await;
            let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
            stack.add_local_source("app", &repo).await;
            vars.insert("runId", pushed(&stack, &repo, "no-agent", &mut texts).await);
            (stack, repo)
        }
        // A bare-metal scaler whose binaryPath does not exist.
        "provisioning" => {
            let dir = tempfile::tempdir().unwrap().keep();
            let config = dir.join("scalers.yaml");
            std::fs::write(
                &config,
                "version: 1\nscalers:\n  - name: metal\n    type: bare-metal\n    maxAgents: 4\n    labelSets:\n      - labels: [scaled]\n        binaryPath: /nonexistent/kici-agent\n",
            )
            .unwrap();
            let config = config.display().to_string();
            let stack = Stack::start_with(&[
                ("KICI_SCALER_CONFIG_PATH", config.as_str()),
                ("KICI_QUEUE_TIMEOUT_MS", "3000"),
            ])
            .await;
            let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
            stack.add_local_source("app", &repo).await;
            vars.insert("runId", pushed(&stack, &repo, "scaled", &mut texts).await);
            (stack, repo)
        }
        // The local source's repository is moved after the push: the agent cannot fetch the
        // job's commit from the orchestrator.
        "checkout" => {
            let mut stack = Stack::start().await;
            let repo = Repo::from_fixture(stack.dir.path(), FIXTURE);
            stack.add_local_source("app", &repo).await;
            let runs = stack.push("app", &repo, "scaled").await;
            let origin = repo.origin();
            std::fs::rename(&origin, origin.with_extension("moved")).unwrap();
            stack.start_agent("agent-1", &["scaled"]).await;
            let detail = stack.wait_run(&runs[0]).await;
            assert_eq!(detail.run.status, RunStatus::Failed, "{detail:#?}");
            texts.extend(detail.run.failure_reason.clone());
            vars.insert("runId", runs[0].clone());
            (stack, repo)
        }
        other => panic!("{PAGE}: no scenario `{other}`"),
    };
    vars.insert("databaseUrl", stack.database_url());
    if name == "failed-step" {
        texts.push(started_on_a_newer_database(&stack));
    }
    Scenario {
        cwd: repo.work().to_path_buf(),
        stack,
        vars,
        texts,
        _repo: repo,
    }
}

#[tokio::test]
async fn every_command_and_text_of_the_troubleshooting_page_is_what_this_build_prints() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let page = std::fs::read_to_string(root.join(PAGE)).unwrap();
    let (blocks, mentions) = parse(&page);
    assert!(
        blocks.iter().any(|b| b.kind == Kind::Console),
        "{PAGE} has no console block"
    );

    let mut names: Vec<String> = blocks
        .iter()
        .map(|b| b.scenario.clone())
        .chain(mentions.iter().map(|m| m.scenario.clone()))
        .collect();
    names.sort();
    names.dedup();
    let mut problems = Vec::new();
    for name in &names {
        let scenario = scenario(name).await;
        // What the scenario printed: its texts block are looked for in it.
        let mut corpus: String = scenario.texts.iter().map(|t| format!("{t}\n")).collect();
        let mut ran: Vec<Vec<String>> = Vec::new();
        // A mention is covered by a command run with more arguments, not by a subcommand:
        // `kici-admin inspect-bundle` by `kici-admin inspect-bundle f.zip`, but `kici-admin
        // diagnose` not by `kici-admin diagnose drift`.
        let covered = |ran: &[Vec<String>], mention: &[String]| {
            ran.iter().any(|words| {
                words.starts_with(mention)
                    && words.get(mention.len()).is_none_or(|next| {
                        next.starts_with('-') || !next.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    })
            })
        };
        for block in blocks.iter().filter(|b| b.kind == Kind::Console && &b.scenario == name) {
            let mut commands: Vec<(String, Vec<String>)> = Vec::new();
            for line in &block.lines {
                match line.strip_prefix("$ ") {
                    Some(command) => commands.push((command.to_string(), Vec::new())),
                    None => match commands.last_mut() {
                        Some((_, output)) => output.push(line.clone()),
                        None => problems.push(format!("{PAGE}:{}: output before any command", block.line)),
                    },
                }
            }
            for (line, expected) in commands {
                // `  # exits N` says the command fails on purpose; without it, it must succeed.
                let (command, exits) = match line.split_once("  # exits ") {
                    Some((command, code)) => (command.trim().to_string(), code.trim().parse::<i32>().unwrap()),
                    None => (line.clone(), 0),
                };
                let (code, output) = scenario.run(&command);
                corpus.push_str(&output);
                ran.push(command.split_whitespace().map(str::to_string).collect());
                if code != exits {
                    problems.push(format!(
                        "{PAGE}:{}: `{command}` exits {code}, not {exits}:\n{output}",
                        block.line
                    ));
                } else if let Err(missing) = shows_with(&expected, &output, &scenario.vars) {
                    problems.push(format!(
                        "{PAGE}:{}: `{command}` does not print a line like\n  {missing}\nIt printed:\n{output}",
                        block.line
                    ));
                }
            }
        }
        for mention in mentions.iter().filter(|m| &m.scenario == name) {
            if covered(&ran, &command_path(&mention.command)) {
                continue;
            }
            // As written, it works: no error (`diagnose` exits 1 and 2 for what it found).
            let (code, output) = scenario.run(&mention.command);
            corpus.push_str(&output);
            if output.lines().any(|l| l.to_lowercase().starts_with("error:")) {
                problems.push(format!(
                    "{PAGE}:{}: `{}` exits {code}:\n{output}",
                    mention.line, mention.command
                ));
            }
        }
        for block in blocks.iter().filter(|b| b.kind == Kind::Text && &b.scenario == name) {
            if shows_with(&block.lines, &corpus, &scenario.vars).is_err() {
                problems.push(format!(
                    "{PAGE}:{}: scenario `{name}` did not produce the text\n  {}",
                    block.line,
                    block.lines.join("\n  ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn page_patterns_match_placeholders_and_ellipses_only() {
    assert!(pattern("Run <runId> failed").is_match("Run 01abc failed"));
    assert!(!pattern("Run <runId> failed").is_match("Run 01abc passed"));
    assert!(pattern("…compiling…").is_match("  12:00 compiling now"));
    assert!(pattern("a (b) [c] <x>.").is_match("a (b) [c] y."));
    assert!(!pattern("a.b").is_match("axb"));
    let actual = "one\ntwo\nthree\n";
    assert!(shows(&["one".into(), "…".into(), "three".into()], actual).is_ok());
    assert_eq!(shows(&["three".into(), "one".into()], actual), Err("one".to_string()));
}

const REFERENCE: &str = "docs/configuration.md";

fn table(out: &mut String, vars: &[kici_telemetry::env::Var]) {
    out.push_str("| Variable | Default | What it does |\n|---|---|---|\n");
    for var in vars {
        let default = if var.default.is_empty() {
            "–".to_string()
        } else {
            format!("`{}`", var.default)
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            var.name,
            var.doc.replace('|', "\\|")
        ));
    }
}

fn reference() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from each service's schema by crates/kici-testkit/tests/docs.rs: do not edit. KICI_UPDATE_DOCS=1 cargo test -p kici-testkit --test docs rewrites it. -->\n\n\
         Each service reads its configuration from `KICI_*` environment variables once, at start, and checks them all before it starts. \
         A bad value stops it with every problem listed (`Configuration validation failed:`). \
         So does a `KICI_*` variable it does not know (`Unknown KICI_* env var(s) detected — refusing to start.`), naming the closest known one; \
         `KICI_DEV=true` turns that one into a warning.\n",
    );
    let sections: [(&str, &str, &[kici_telemetry::env::Var]); 5] = [
        ("kici-orchestrator", "", kici_orchestrator::config::VARS),
        ("kici-agent", "", kici_agent::config::VARS),
        ("kici-platform", "The dashboard.", kici_platform::config::VARS),
        (
            "Every service",
            "Logging and development switches, read by the orchestrator, the agent and the dashboard.",
            kici_telemetry::env::COMMON,
        ),
        (
            "The CLIs",
            "Read by `kici` and `kici-admin`. The services accept them too, and ignore them, so one shell can start both.",
            kici_telemetry::env::CLIENT,
        ),
    ];
    for (title, intro, vars) in sections {
        out.push_str(&format!("\n## {title}\n\n"));
        if !intro.is_empty() {
            out.push_str(&format!("{intro}\n\n"));
        }
        table(&mut out, vars);
    }
    out
}

#[test]
fn the_configuration_reference_is_generated_from_each_services_schema() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(REFERENCE);
    let expected = reference();
    if std::env::var("KICI_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{REFERENCE} is not what the services' schemas say (hint: KICI_UPDATE_DOCS=1 cargo test -p kici-testkit --test docs, then commit it)"
    );
}

/// Each default the code reads a variable with, against what the schema `vars` says.
fn check_defaults(service: &str, read: BTreeMap<String, String>, vars: &[kici_telemetry::env::Var]) -> Vec<String> {
    let unread = vars
        .iter()
        .filter(|var| !var.default.is_empty() && !read.contains_key(var.name))
        .map(|var| {
            format!(
                "{service}: the schema says {} defaults to `{}`, but the code never notes reading it with a default",
                var.name, var.default
            )
        });
    let unread: Vec<String> = unread.collect();
    read.into_iter()
        .filter_map(|(name, default)| match vars.iter().find(|v| v.name == name) {
            None => Some(format!("{service} reads {name}, which its schema does not list")),
            Some(var) if var.default != default => Some(format!(
                "{service}: the schema says {name} defaults to `{}`; the code reads `{default}`",
                var.default
            )),
            Some(_) => None,
        })
        .chain(unread)
        .collect()
}

#[test]
fn every_default_a_schema_states_is_the_one_its_service_reads() {
    use kici_telemetry::env::defaults_read_by;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let mut problems = Vec::new();
    let orchestrator = env(&[("KICI_DATA_DIR", &data_dir)]);
    let read = defaults_read_by(|| kici_orchestrator::config::Config::from_env(&orchestrator).unwrap());
    problems.extend(check_defaults(
        "kici-orchestrator",
        read,
        kici_orchestrator::config::VARS,
    ));
    let agent = env(&[
        ("KICI_ORCHESTRATOR_URL", "ws://127.0.0.1:4000/ws"),
        ("KICI_AGENT_TOKEN", "kat_x"),
    ]);
    let read = defaults_read_by(|| kici_agent::config::Config::from_env(&agent, "host").unwrap());
    problems.extend(check_defaults("kici-agent", read, kici_agent::config::VARS));
    let platform = env(&[
        ("KICI_DATA_DIR", &data_dir),
        ("KICI_PLATFORM_ADMIN_TOKEN", "0123456789abcdef0123"),
    ]);
    let read = defaults_read_by(|| kici_platform::config::Config::from_env(&platform).unwrap());
    problems.extend(check_defaults("kici-platform", read, kici_platform::config::VARS));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
