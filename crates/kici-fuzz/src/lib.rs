//! A stable-Rust fuzz harness for every parser a pusher, a job or a network peer can reach: the
//! lock file, webhook bodies, the orchestrator ⇄ agent, orchestrator ⇄ Platform and runner IPC
//! messages, `scalers.yaml`, and trigger patterns. The rule it checks is the one the style guide
//! sets for user input: no input may panic.
//!
//! Map: [`targets`] holds one `fn(&[u8])` per parser, called the way its production caller
//! calls it; [`corpus`] builds each target's seed inputs from the real shapes; [`generate`]
//! derives input number `i` of a run from the seeds, deterministically from `(seed, i)` (byte
//! and JSON-tree mutations, `arbitrary`-driven JSON, deep nesting, huge strings, edge
//! numbers); [`worker`] runs a target for a time budget under `catch_unwind` and minimizes each
//! distinct panic. The `kici-fuzz` binary supervises one worker process per target, so a stack
//! overflow, an abort or a hang (which `catch_unwind` cannot catch) is reported with its input
//! too.
//!
//! What it is not: coverage-guided (stable Rust has no libFuzzer here), so it finds what
//! mutations of realistic inputs reach, not deep branch-specific bugs.

pub mod corpus;
pub mod generate;
pub mod targets;
pub mod worker;

/// A parser under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `LockFile::parse`, then what the pipeline does with a loaded lock.
    Lockfile,
    /// `providers::normalize` on a webhook body, for every provider preset.
    Webhook,
    /// Orchestrator ⇄ agent messages (`kici_engine::protocol`).
    AgentProtocol,
    /// Orchestrator ⇄ Platform frames (`kici_engine::platform_protocol`).
    PlatformProtocol,
    /// Runner IPC lines (`kici_engine::runner_protocol`).
    RunnerProtocol,
    /// `scalers.yaml` (`scaler::config::from_yaml_str`).
    Scalers,
    /// Globs and regexes (`kici_engine::pattern`).
    Patterns,
    /// Trigger lists against events (`kici_engine::trigger::match_triggers`).
    Triggers,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Lockfile,
        Target::Webhook,
        Target::AgentProtocol,
        Target::PlatformProtocol,
        Target::RunnerProtocol,
        Target::Scalers,
        Target::Patterns,
        Target::Triggers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Lockfile => "lockfile",
            Target::Webhook => "webhook",
            Target::AgentProtocol => "agent-protocol",
            Target::PlatformProtocol => "platform-protocol",
            Target::RunnerProtocol => "runner-protocol",
            Target::Scalers => "scalers",
            Target::Patterns => "patterns",
            Target::Triggers => "triggers",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }

    /// Runs the target's parser on one input. Panics only if the code under test panics.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Lockfile => targets::lockfile(data),
            Target::Webhook => targets::webhook(data),
            Target::AgentProtocol => targets::agent_protocol(data),
            Target::PlatformProtocol => targets::platform_protocol(data),
            Target::RunnerProtocol => targets::runner_protocol(data),
            Target::Scalers => targets::scalers(data),
            Target::Patterns => targets::patterns(data),
            Target::Triggers => targets::triggers(data),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
