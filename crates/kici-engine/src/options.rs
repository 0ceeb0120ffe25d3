//! What this build honours of the authoring surface: the `workflow()`, `job()` and `step()`
//! options an author may write, and the lock-file keys the orchestrator acts on. Anything else
//! is refused rather than silently ignored — at compile time with a "did you mean" or a "not
//! implemented by this build" diagnostic, and at lock load as a `lock_resolution` failure.
//! Implementing a feature moves its names from the `NOT_IMPLEMENTED` lists to the honoured ones.

use crate::suggest::closest;

/// Where an option or key sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Workflow,
    Job,
    Step,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Workflow => "workflow",
            Level::Job => "job",
            Level::Step => "step",
        }
    }
}

/// The verdict on one option an author wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionVerdict {
    Honoured,
    /// A documented KiCI option this build does not implement yet.
    NotImplemented,
    /// Not a KiCI option; the closest one, if any is close.
    Unknown {
        did_you_mean: Option<&'static str>,
    },
}

const WORKFLOW_OPTIONS: &[&str] = &[
    "jobs",
    "on",
    "description",
    "hashFiles",
    "registries",
    "installEnv",
    "timeout",
    "rules",
    "concurrency",
    "onCancel",
    "cleanup",
    "onSuccess",
    "onFailure",
];
const WORKFLOW_NOT_IMPLEMENTED: &[&str] = &["approval"];

const JOB_OPTIONS: &[&str] = &[
    "name",
    "runsOn",
    "needs",
    "steps",
    "run",
    "matrix",
    "include",
    "exclude",
    "rules",
    "description",
    "checkout",
    "cache",
    "init",
    "env",
    "environment",
    "environments",
    "approval",
    "secrets",
    "timeout",
    "onCancel",
    "cleanup",
    "onSuccess",
    "onFailure",
    "beforeStep",
    "afterStep",
    "maxParallel",
    "failFast",
    "gracePeriod",
    "concurrencyGroup",
];
const JOB_NOT_IMPLEMENTED: &[&str] = &[
    "container",
    "resources",
    "runsOnAll",
    "onUnreachable",
    "includeUninitialized",
];

const STEP_OPTIONS: &[&str] = &[
    "name",
    "run",
    "timeout",
    "retry",
    "retryIf",
    "continueOnError",
    "outputs",
    "rules",
    "onCancel",
    "cleanup",
    "cache",
];
const STEP_NOT_IMPLEMENTED: &[&str] = &["approval", "check", "summarize", "drift", "whenInSync"];

fn lists(level: Level) -> (&'static [&'static str], &'static [&'static str]) {
    match level {
        Level::Workflow => (WORKFLOW_OPTIONS, WORKFLOW_NOT_IMPLEMENTED),
        Level::Job => (JOB_OPTIONS, JOB_NOT_IMPLEMENTED),
        Level::Step => (STEP_OPTIONS, STEP_NOT_IMPLEMENTED),
    }
}

/// Whether this build honours the option `name` at `level`.
pub fn check_option(level: Level, name: &str) -> OptionVerdict {
    let (honoured, not_implemented) = lists(level);
    if honoured.contains(&name) {
        OptionVerdict::Honoured
    } else if not_implemented.contains(&name) {
        OptionVerdict::NotImplemented
    } else {
        OptionVerdict::Unknown {
            did_you_mean: closest(name, honoured.iter().chain(not_implemented).copied()),
        }
    }
}

/// Lock-file trigger types (`_type`) this build matches; a lock file naming another is refused
/// at load.
const TRIGGERS: &[&str] = &[
    "push",
    "pr",
    "tag",
    "dispatch",
    "schedule",
    "kici_event",
    "workflow_complete",
    "job_complete",
    "generic_webhook",
];

/// Whether this build fires triggers of lock type `kind`.
pub fn trigger_honoured(kind: &str) -> bool {
    TRIGGERS.contains(&kind)
}

/// The kinds of object in a lock file whose keys are checked at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockObject {
    Top,
    Workflow,
    StaticJob,
    DynamicJob,
    Step,
    ParallelGroup,
}

const LOCK_TOP: &[&str] = &[
    "schemaVersion",
    "source",
    "contentHash",
    "lockfileHash",
    "sdk",
    "workflows",
];
const LOCK_WORKFLOW: &[&str] = &[
    "name",
    "source",
    "contentHash",
    "compileSchemaVersion",
    "triggers",
    "jobs",
    "description",
    "hashFiles",
    "resolvedHashFiles",
    "registries",
    "installEnv",
    "timeout",
    "rules",
    "concurrency",
    "hasOnCancel",
    "hasCleanup",
    "hasOnSuccess",
    "hasOnFailure",
];
const LOCK_STATIC_JOB: &[&str] = &[
    "_type",
    "name",
    "runsOn",
    "excludeLabels",
    "runsOnPick",
    "needs",
    "steps",
    "matrix",
    "include",
    "exclude",
    "rules",
    "description",
    "checkout",
    "cache",
    "init",
    "env",
    "dynamicEnv",
    "environments",
    "approval",
    "secrets",
    "hasOnCancel",
    "hasCleanup",
    "hasOnSuccess",
    "hasOnFailure",
    "hasBeforeStep",
    "hasAfterStep",
    "maxParallel",
    "failFast",
    "gracePeriod",
    "concurrencyGroup",
    "timeout",
];
const LOCK_DYNAMIC_JOB: &[&str] = &["_type", "source", "group", "needs"];
const LOCK_STEP: &[&str] = &[
    "name",
    "hasOutputs",
    "continueOnError",
    "timeout",
    "retry",
    "sourceLocation",
    "hasRules",
    "hasOnCancel",
    "hasCleanup",
    "cache",
];
const LOCK_PARALLEL_GROUP: &[&str] = &["kind", "name", "failFast", "maxParallel", "children"];

/// Whether the orchestrator and agents act on `key` in a lock-file object of kind `object`.
pub fn lock_key_honoured(object: LockObject, key: &str) -> bool {
    let keys = match object {
        LockObject::Top => LOCK_TOP,
        LockObject::Workflow => LOCK_WORKFLOW,
        LockObject::StaticJob => LOCK_STATIC_JOB,
        LockObject::DynamicJob => LOCK_DYNAMIC_JOB,
        LockObject::Step => LOCK_STEP,
        LockObject::ParallelGroup => LOCK_PARALLEL_GROUP,
    };
    keys.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_honoured_not_implemented_or_unknown() {
        assert_eq!(check_option(Level::Job, "runsOn"), OptionVerdict::Honoured);
        assert_eq!(check_option(Level::Job, "approval"), OptionVerdict::Honoured);
        assert_eq!(check_option(Level::Job, "resources"), OptionVerdict::NotImplemented);
        assert_eq!(
            check_option(Level::Job, "timeoutt"),
            OptionVerdict::Unknown {
                did_you_mean: Some("timeout")
            }
        );
        assert_eq!(
            check_option(Level::Job, "enviroment"),
            OptionVerdict::Unknown {
                did_you_mean: Some("environment")
            }
        );
        assert_eq!(
            check_option(Level::Step, "zzzzzzzzzz"),
            OptionVerdict::Unknown { did_you_mean: None }
        );
        assert_eq!(check_option(Level::Workflow, "approval"), OptionVerdict::NotImplemented);
        assert_eq!(check_option(Level::Workflow, "rules"), OptionVerdict::Honoured);
        assert_eq!(check_option(Level::Step, "rules"), OptionVerdict::Honoured);
    }

    #[test]
    fn no_name_is_both_honoured_and_not_implemented() {
        for level in [Level::Workflow, Level::Job, Level::Step] {
            let (honoured, not_implemented) = lists(level);
            for name in honoured {
                assert!(!not_implemented.contains(name), "{} {name}", level.as_str());
            }
        }
    }

    #[test]
    fn lock_keys() {
        assert!(lock_key_honoured(LockObject::StaticJob, "runsOn"));
        assert!(lock_key_honoured(LockObject::StaticJob, "approval"));
        assert!(lock_key_honoured(LockObject::StaticJob, "concurrencyGroup"));
        assert!(!lock_key_honoured(LockObject::StaticJob, "resources"));
        assert!(lock_key_honoured(LockObject::Workflow, "rules"));
        assert!(!lock_key_honoured(LockObject::Workflow, "approval"));
        assert!(lock_key_honoured(LockObject::Step, "retry"));
        assert!(trigger_honoured("schedule"));
        assert!(trigger_honoured("kici_event"));
        assert!(!trigger_honoured("comment"));
    }

    /// docs/sdk.md's "What this build refuses" names exactly the options not implemented.
    #[test]
    fn the_sdk_guide_lists_what_this_build_refuses() {
        let guide = include_str!("../../../docs/sdk.md");
        for level in [Level::Workflow, Level::Job, Level::Step] {
            let prefix = format!("- on `{}()`: ", level.as_str());
            let line = guide
                .lines()
                .find(|line| line.starts_with(&prefix))
                .unwrap_or_else(|| panic!("docs/sdk.md has no line starting {prefix:?}"));
            let mut listed: Vec<&str> = line[prefix.len()..].split('`').skip(1).step_by(2).collect();
            let mut expected = lists(level).1.to_vec();
            listed.sort_unstable();
            expected.sort_unstable();
            assert_eq!(listed, expected, "docs/sdk.md, {} options", level.as_str());
        }
    }
}
