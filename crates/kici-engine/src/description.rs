//! Workflow descriptions: what the Node runner reports about workflow modules (`describe`)
//! and about the jobs a dynamic job generator produced (`evaluate` kind `jobs`). The compiler
//! turns them into lock-file entries; the orchestrator turns generated jobs into job rows.
//! Shapes: `sdk/PROTOCOL.md`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::cache::CacheSpec;
use crate::dag::{Need, NeedsWhen};
use crate::excerpt::excerpt;
use crate::install::LockRegistry;
use crate::labels::{LabelMatcher, LabelSelector};
use crate::lockfile::{
    HookFlags, LockConcurrency, LockEnv, LockEnvironment, LockMatrix, LockName, LockStep, RunsOnPick, SourceLocation,
    StaticJob,
};
use crate::matrix::{Combination, MatrixValues};
use crate::options::{Level, OptionVerdict, check_option};
use crate::protection::LockApproval;
use crate::status::JobStatus;
use crate::trigger::Trigger;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDescription {
    pub name: String,
    pub export: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    pub jobs: Vec<JobEntry>,
    #[serde(default)]
    pub rules: Vec<RuleDescription>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub hash_files: Vec<String>,
    #[serde(default)]
    pub has_on_cancel: bool,
    #[serde(default)]
    pub has_cleanup: bool,
    #[serde(default)]
    pub has_on_success: bool,
    #[serde(default)]
    pub has_on_failure: bool,
    #[serde(default)]
    pub concurrency: Option<LockConcurrency>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub registries: Vec<LockRegistry>,
    #[serde(default)]
    pub install_env: Vec<String>,
    /// The option names the author wrote, checked against what this build honours.
    #[serde(default)]
    pub options: Vec<String>,
}

/// The option names the author wrote for one step, where the step was written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StepOptions {
    pub name: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDescription {
    pub name: String,
    #[serde(default)]
    pub location: Option<SourceLocation>,
    #[serde(default)]
    pub runs_on: Vec<LabelSelector>,
    #[serde(default)]
    pub exclude_labels: Vec<LabelSelector>,
    #[serde(default)]
    pub runs_on_pick: Option<RunsOnPick>,
    #[serde(default)]
    pub needs: Vec<NeedDescription>,
    pub steps: Vec<LockStep>,
    #[serde(default)]
    pub matrix: Option<MatrixDescription>,
    #[serde(default)]
    pub include: Vec<Combination>,
    #[serde(default)]
    pub exclude: Vec<Combination>,
    #[serde(default)]
    pub rules: Vec<RuleDescription>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub checkout: Option<bool>,
    #[serde(default)]
    pub cache: Vec<CacheSpec>,
    #[serde(default)]
    pub env: Option<Map<String, Value>>,
    /// `init`: the normalized command specs.
    #[serde(default)]
    pub init: Option<Value>,
    /// `env` given as a function: its source (`fn.toString()`).
    #[serde(default)]
    pub env_function: Option<String>,
    #[serde(default)]
    pub environments: Vec<EnvironmentDescription>,
    /// `concurrencyGroup`: a name or a function's source.
    #[serde(default)]
    pub concurrency_group: Option<EnvironmentDescription>,
    #[serde(default)]
    pub approval: Option<LockApproval>,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub has_on_cancel: bool,
    #[serde(default)]
    pub has_cleanup: bool,
    #[serde(default)]
    pub has_on_success: bool,
    #[serde(default)]
    pub has_on_failure: bool,
    #[serde(default)]
    pub has_before_step: bool,
    #[serde(default)]
    pub has_after_step: bool,
    #[serde(default)]
    pub grace_period: Option<u64>,
    #[serde(default)]
    pub max_parallel: Option<u32>,
    #[serde(default)]
    pub fail_fast: Option<bool>,
    #[serde(default)]
    pub timeout: Option<u64>,
    /// The option names the author wrote, checked against what this build honours.
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub step_options: Vec<StepOptions>,
}

/// One entry of a job's `environment`/`environments`: a name, or a function's source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum EnvironmentDescription {
    Name { name: String },
    Function { function: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NeedDescription {
    Name(String),
    Conditional { name: String, when: WhenDescription },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum WhenDescription {
    Keyword(String),
    Statuses(Vec<JobStatus>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "_type", rename_all = "lowercase")]
pub enum MatrixDescription {
    Static { values: MatrixValues },
    Dynamic,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuleDescription {
    pub label: String,
}

/// A `workflow({jobs})` entry: a `job()` or a `dynamicJob()`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum JobEntry {
    Dynamic(DynamicJobDescription),
    Static(Box<JobDescription>),
}

/// `dynamicJob(group?, generate)` at position `index` of the workflow's jobs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicJobDescription {
    #[serde(rename = "_type")]
    pub kind: DynamicTag,
    pub index: u32,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub needs: Vec<NeedDescription>,
    #[serde(default)]
    pub location: Option<SourceLocation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicTag {
    Dynamic,
}

impl NeedDescription {
    /// The lock-file form; `Err` names an unknown `when`.
    pub fn to_need(&self) -> Result<Need, String> {
        match self {
            NeedDescription::Name(name) => Ok(Need::Name(name.clone())),
            NeedDescription::Conditional { name, when } => {
                let when = match when {
                    WhenDescription::Statuses(statuses) => Some(NeedsWhen::Statuses(statuses.clone())),
                    WhenDescription::Keyword(keyword) => NeedsWhen::parse(keyword),
                };
                when.map(|w| Need::new(name, &w))
                    .ok_or_else(|| format!("unknown needs condition for \"{name}\""))
            }
        }
    }
}

impl JobDescription {
    /// The job as a lock-file static job (labels compiled, needs resolved); used for jobs a
    /// generator produced at run time. `Err` says what is wrong with the description.
    pub fn to_static_job(&self) -> Result<StaticJob, String> {
        let step_options = self.step_options.iter().map(|step| (Level::Step, &step.options));
        for (level, names) in std::iter::once((Level::Job, &self.options)).chain(step_options) {
            if let Some(name) = names
                .iter()
                .find(|name| check_option(level, name) != OptionVerdict::Honoured)
            {
                return Err(format!(
                    "job \"{}\": {} option \"{}\" is not honoured by this build of KiCI",
                    excerpt(&self.name),
                    level.as_str(),
                    excerpt(name)
                ));
            }
        }
        let matchers = |selectors: &[LabelSelector]| -> Result<Vec<LabelMatcher>, String> {
            selectors
                .iter()
                .map(|s| s.to_matcher().map_err(|e| format!("job \"{}\": {e}", self.name)))
                .collect()
        };
        let needs = self
            .needs
            .iter()
            .map(NeedDescription::to_need)
            .collect::<Result<Vec<_>, _>>()?;
        let matrix = match &self.matrix {
            None => None,
            Some(MatrixDescription::Static { values }) => Some(LockMatrix::Static { values: values.clone() }),
            Some(MatrixDescription::Dynamic) => {
                return Err(format!(
                    "job \"{}\": a generated job cannot have a dynamic matrix",
                    self.name
                ));
            }
        };
        Ok(StaticJob {
            name: self.name.clone(),
            runs_on: matchers(&self.runs_on)?,
            exclude_labels: matchers(&self.exclude_labels)?,
            runs_on_pick: Some(self.runs_on_pick.unwrap_or(RunsOnPick::Deterministic)),
            needs,
            steps: self.steps.clone(),
            matrix,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            rules: Vec::new(),
            description: self.description.clone(),
            checkout: self.checkout,
            cache: self.cache.clone(),
            environments: self
                .environments
                .iter()
                .map(|environment| match environment {
                    EnvironmentDescription::Name { name } => Ok(LockEnvironment {
                        value: LockName::Name(name.clone()),
                        dynamic: false,
                    }),
                    EnvironmentDescription::Function { .. } => Err(format!(
                        "job \"{}\": a generated job names its environments; it cannot compute them with a function",
                        self.name
                    )),
                })
                .collect::<Result<_, _>>()?,
            env: match (&self.env, &self.env_function) {
                (_, Some(_)) => {
                    return Err(format!(
                        "job \"{}\": a generated job gives env as an object, not a function",
                        self.name
                    ));
                }
                (env, None) => env.clone().map(LockEnv::Static),
            },
            dynamic_env: false,
            init: self.init.clone(),
            approval: self.approval.clone(),
            secrets: self.secrets.clone(),
            hooks: HookFlags {
                has_on_cancel: self.has_on_cancel,
                has_cleanup: self.has_cleanup,
                has_on_success: self.has_on_success,
                has_on_failure: self.has_on_failure,
            },
            has_before_step: self.has_before_step,
            has_after_step: self.has_after_step,
            concurrency_group: match &self.concurrency_group {
                None => None,
                Some(EnvironmentDescription::Name { name }) => Some(LockName::Name(name.clone())),
                Some(EnvironmentDescription::Function { .. }) => {
                    return Err(format!(
                        "job \"{}\": a generated job names its concurrencyGroup; it cannot compute it with a function",
                        self.name
                    ));
                }
            },
            grace_period: self.grace_period,
            max_parallel: self.max_parallel,
            fail_fast: self.fail_fast.unwrap_or(false),
            timeout: self.timeout,
        })
    }
}

/// Most jobs one generator may produce.
pub const MAX_GENERATED_JOBS: usize = 100;

/// Most `runsOn` and `exclude` selectors of one generated job.
pub const MAX_GENERATED_SELECTORS: usize = 64;

/// The generator's output is not too big to look at: checked before anything in it is compiled.
pub fn check_generated_size(jobs: &[JobDescription]) -> Result<(), String> {
    if jobs.len() > MAX_GENERATED_JOBS {
        return Err(format!(
            "the generator returned {} jobs (max {MAX_GENERATED_JOBS})",
            jobs.len()
        ));
    }
    if let Some(job) = jobs
        .iter()
        .find(|job| job.runs_on.len() + job.exclude_labels.len() > MAX_GENERATED_SELECTORS)
    {
        return Err(format!(
            "generated job \"{}\" has {} label selectors (max {MAX_GENERATED_SELECTORS})",
            excerpt(&job.name),
            job.runs_on.len() + job.exclude_labels.len()
        ));
    }
    Ok(())
}

/// Checks the jobs one generator produced as a whole, since the agent that ran it is not
/// trusted to have done so: at most [`MAX_GENERATED_JOBS`], unique names that do not shadow the
/// workflow's own jobs, and `needs` naming a generated or workflow job without a cycle.
pub fn validate_generated(jobs: &[StaticJob], workflow_jobs: &[&str]) -> Result<(), String> {
    if jobs.len() > MAX_GENERATED_JOBS {
        return Err(format!(
            "the generator returned {} jobs (max {MAX_GENERATED_JOBS})",
            jobs.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for job in jobs {
        if workflow_jobs.contains(&job.name.as_str()) {
            return Err(format!(
                "generated job \"{}\" has the name of a job the workflow declares",
                job.name
            ));
        }
        if !seen.insert(job.name.as_str()) {
            return Err(format!("two generated jobs are named \"{}\"", job.name));
        }
    }
    let graph: Vec<(&str, Vec<&str>)> = jobs
        .iter()
        .map(|job| (job.name.as_str(), job.needs.iter().map(Need::name).collect()))
        .chain(workflow_jobs.iter().map(|name| (*name, Vec::new())))
        .collect();
    crate::dag::validate(&graph).map(|_| ()).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_static_or_dynamic() {
        let entries: Vec<JobEntry> = serde_json::from_value(serde_json::json!([
            {"_type": "dynamic", "index": 1, "group": "pkgs", "needs": ["build"]},
            {"name": "build", "runsOn": [{"kind": "glob", "pattern": "linux-*"}], "needs": [{"name": "x", "when": "always"}], "steps": [{"name": "s", "hasOutputs": false}]}
        ]))
        .unwrap();
        assert!(matches!(&entries[0], JobEntry::Dynamic(d) if d.index == 1 && d.group.as_deref() == Some("pkgs")));
        let JobEntry::Static(job) = &entries[1] else {
            panic!("static")
        };
        let lock = job.to_static_job().unwrap();
        assert_eq!(
            lock.runs_on,
            vec![LabelMatcher::Regex {
                source: "^(?:linux\\-[^/]*)$".into(),
                flags: String::new()
            }]
        );
        assert_eq!(lock.needs[0].run_on().len(), 6);
    }

    #[test]
    fn oversized_generator_output_is_refused_before_compiling() {
        let job = |selectors: usize| -> JobDescription {
            serde_json::from_value(serde_json::json!({
                "name": "j", "steps": [],
                "runsOn": vec![serde_json::json!({"kind": "glob", "pattern": "a*"}); selectors],
            }))
            .unwrap()
        };
        assert_eq!(check_generated_size(&[job(64)]), Ok(()));
        assert_eq!(
            check_generated_size(&[job(65)]),
            Err("generated job \"j\" has 65 label selectors (max 64)".to_string())
        );
        let many: Vec<JobDescription> = (0..101).map(|_| job(1)).collect();
        assert_eq!(
            check_generated_size(&many),
            Err("the generator returned 101 jobs (max 100)".to_string())
        );
    }

    #[test]
    fn generated_jobs_with_options_this_build_does_not_honour_are_refused() {
        let job = |options: serde_json::Value, step_options: serde_json::Value| -> Result<StaticJob, String> {
            let description: JobDescription = serde_json::from_value(serde_json::json!({
                "name": "deploy", "steps": [{"name": "s", "hasOutputs": false}],
                "options": options, "stepOptions": step_options,
            }))
            .unwrap();
            description.to_static_job()
        };
        assert!(
            job(
                serde_json::json!(["runsOn", "steps"]),
                serde_json::json!([{"name": "s", "options": ["run"]}])
            )
            .is_ok()
        );
        assert_eq!(
            job(serde_json::json!(["runsOn", "resources"]), serde_json::json!([])).unwrap_err(),
            "job \"deploy\": job option \"resources\" is not honoured by this build of KiCI"
        );
        assert_eq!(
            job(
                serde_json::json!(["runsOn"]),
                serde_json::json!([{"name": "s", "options": ["run", "check"]}])
            )
            .unwrap_err(),
            "job \"deploy\": step option \"check\" is not honoured by this build of KiCI"
        );
    }

    fn generated(name: &str, needs: &[&str]) -> StaticJob {
        let description: JobDescription = serde_json::from_value(serde_json::json!({
            "name": name,
            "needs": needs,
            "steps": [{"name": "s", "hasOutputs": false}],
        }))
        .unwrap();
        description.to_static_job().unwrap()
    }

    #[test]
    fn generated_jobs_are_checked_as_a_whole() {
        let ok = [generated("a", &["build"]), generated("b", &["a"])];
        assert_eq!(validate_generated(&ok, &["build"]), Ok(()));
        assert_eq!(
            validate_generated(&[generated("a", &[]), generated("a", &[])], &[]),
            Err("two generated jobs are named \"a\"".to_string())
        );
        assert_eq!(
            validate_generated(&[generated("build", &[])], &["build"]),
            Err("generated job \"build\" has the name of a job the workflow declares".to_string())
        );
        assert_eq!(
            validate_generated(&[generated("a", &["nope"])], &[]),
            Err("job \"a\" needs \"nope\", which does not exist".to_string())
        );
        assert_eq!(
            validate_generated(&[generated("a", &["b"]), generated("b", &["a"])], &[]),
            Err("circular dependency: a -> b -> a".to_string())
        );
        let many: Vec<StaticJob> = (0..101).map(|i| generated(&format!("j{i}"), &[])).collect();
        assert_eq!(
            validate_generated(&many, &[]),
            Err("the generator returned 101 jobs (max 100)".to_string())
        );
    }
}
