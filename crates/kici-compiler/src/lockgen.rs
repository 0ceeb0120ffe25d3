//! Lock-file generation: workflow descriptions from the runner become `kici.lock.json`, after
//! the checks the runner cannot make (duplicate names, the needs graph, the static matrix cap,
//! label patterns). Every problem is reported in one pass; any problem means no lock file.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use kici_engine::dag::{self, DagError, Need, NeedsWhen};
use kici_engine::hash::content_hash;
use kici_engine::labels::{LabelMatcher, LabelSelector};
use kici_engine::lockfile::{
    COMPILE_SCHEMA_VERSION, DynamicJob, DynamicKind, HookFlags, InlineValue, LockEnv, LockEnvironment, LockFile,
    LockJob, LockMatrix, LockName, LockRule, LockWorkflow, MatrixSource, RuleSource, SCHEMA_VERSION, SdkStamp,
    SourceLocation, SourceRef, StaticJob,
};
use kici_engine::matrix::{self, MAX_COMBINATIONS};
use kici_engine::options::{Level, OptionVerdict, check_option};
use kici_engine::runner_protocol::DescribedFile;
use kici_engine::trigger::Trigger;

use crate::describe::{
    EnvironmentDescription, JobDescription, JobEntry, MatrixDescription, NeedDescription, WhenDescription,
    WorkflowDescription,
};
use crate::diagnostic::{Code, Diagnostic};
use crate::hash_files;
use crate::project::WORKFLOWS_DIR;
use crate::purity;

/// A lock file and the notes for its author (`[kici] …`, e.g. an init job a function needs).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub lock: LockFile,
    pub notes: Vec<String>,
}

/// The lock file, or the diagnostics explaining why there is none.
pub fn generate(root: &Path, files: &[DescribedFile], sdk: &SdkStamp) -> Result<Generated, Vec<Diagnostic>> {
    let mut generator = Generator {
        root,
        sdk,
        diagnostics: Vec::new(),
        notes: Vec::new(),
        workflow_files: HashMap::new(),
    };
    let mut workflows = Vec::new();
    for file in files {
        workflows.extend(generator.file(file));
    }
    if !generator.diagnostics.is_empty() {
        return Err(generator.diagnostics);
    }
    let source = workflows.first().map_or_else(
        || SourceRef {
            file: WORKFLOWS_DIR.to_string(),
            export: "#default".to_string(),
        },
        |w: &LockWorkflow| w.source.clone(),
    );
    let lock = LockFile {
        schema_version: SCHEMA_VERSION,
        content_hash: LockFile::compute_content_hash(SCHEMA_VERSION, &source, &workflows),
        source,
        lockfile_hash: None,
        sdk: sdk.clone(),
        workflows,
    };
    Ok(Generated {
        lock,
        notes: generator.notes,
    })
}

struct Generator<'a> {
    root: &'a Path,
    sdk: &'a SdkStamp,
    diagnostics: Vec<Diagnostic>,
    notes: Vec<String>,
    /// Workflow name to the file that defined it first.
    workflow_files: HashMap<String, String>,
}

fn position(location: &Option<SourceLocation>) -> Option<(u32, u32)> {
    location.as_ref().map(|l| (l.line, l.column))
}

impl Generator<'_> {
    fn file(&mut self, described: &DescribedFile) -> Vec<LockWorkflow> {
        let file = described.file.as_str();
        if let Some(error) = &described.error {
            let (at_file, at) = match &error.location {
                Some(l) => (l.file.as_str(), Some((l.line, l.column))),
                None => (file, None),
            };
            let code = error.code.as_deref().and_then(Code::parse).unwrap_or(Code::E003);
            self.diagnostics.push(Diagnostic::new(
                code,
                at_file,
                at,
                &error.message,
                error
                    .suggestion
                    .clone()
                    .unwrap_or_else(|| "fix the error; a workflow module must import without throwing".to_string()),
            ));
            return Vec::new();
        }
        let values = described.workflows.as_deref().unwrap_or(&[]);
        if values.is_empty() {
            self.diagnostics.push(Diagnostic::new(
                Code::E004,
                file,
                None,
                format!("{file} exports no workflow"),
                "export one, e.g. `export default workflow('build', { on: push(), jobs: [...] })`",
            ));
            return Vec::new();
        }
        let source = match std::fs::read(self.root.join(file)) {
            Ok(source) => source,
            Err(err) => {
                self.diagnostics.push(Diagnostic::new(
                    Code::E003,
                    file,
                    None,
                    format!("{file} cannot be read to compute its contentHash: {err}"),
                    "make the file readable and compile again",
                ));
                return Vec::new();
            }
        };
        let mut workflows = Vec::new();
        for value in values {
            match serde_json::from_value::<WorkflowDescription>(value.clone()) {
                Ok(description) => {
                    if let Some(workflow) = self.workflow(file, &source, description) {
                        workflows.push(workflow);
                    }
                }
                Err(err) => self.diagnostics.push(Diagnostic::new(
                    Code::E117,
                    file,
                    None,
                    format!("the runner described a workflow this compiler cannot read: {err}"),
                    "the embedded SDK and compiler disagree; reinstall kici",
                )),
            }
        }
        workflows
    }

    fn workflow(&mut self, file: &str, source: &[u8], wf: WorkflowDescription) -> Option<LockWorkflow> {
        let errors_before = self.diagnostics.len();
        let owner = format!("Workflow \"{}\"", wf.name);
        self.options(file, Level::Workflow, &wf.options, position(&wf.location), &owner);
        if let Some(first) = self.workflow_files.get(&wf.name) {
            self.diagnostics.push(Diagnostic::new(
                Code::E107,
                file,
                position(&wf.location),
                format!("Duplicate workflow name \"{}\" (also defined in {first})", wf.name),
                "workflow names must be unique across .kici/workflows; rename one of them",
            ));
        } else {
            self.workflow_files.insert(wf.name.clone(), file.to_string());
        }
        let statics: Vec<(usize, &JobDescription)> = wf
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| match entry {
                JobEntry::Static(job) => Some((i, job.as_ref())),
                JobEntry::Dynamic(_) => None,
            })
            .collect();
        let mut seen_jobs: HashSet<&str> = HashSet::new();
        for (_, job) in &statics {
            if !seen_jobs.insert(job.name.as_str()) {
                self.diagnostics.push(Diagnostic::new(
                    Code::E106,
                    file,
                    position(&job.location),
                    format!("Duplicate job name \"{}\" in workflow \"{}\"", job.name, wf.name),
                    "job names must be unique within a workflow; rename one of them",
                ));
            }
        }
        let jobs: Vec<(usize, StaticJob)> = statics
            .iter()
            .filter_map(|(index, job)| self.job(file, *index, job).map(|j| (*index, j)))
            .collect();
        if seen_jobs.len() == statics.len() && jobs.len() == statics.len() {
            let graph_jobs: Vec<StaticJob> = jobs.iter().map(|(_, j)| j.clone()).collect();
            self.graph(file, &wf, &statics, &graph_jobs);
        }
        let mut lock_jobs: Vec<(usize, LockJob)> = jobs.into_iter().map(|(i, j)| (i, LockJob::Static(j))).collect();
        for entry in &wf.jobs {
            let JobEntry::Dynamic(dynamic) = entry else { continue };
            let mut needs = Vec::new();
            for need in &dynamic.needs {
                match need.to_need() {
                    Ok(need) if seen_jobs.contains(need.name()) => needs.push(need),
                    Ok(need) => self.diagnostics.push(Diagnostic::new(
                        Code::E101,
                        file,
                        position(&dynamic.location),
                        format!(
                            "Dynamic job needs \"{}\", which does not exist in workflow \"{}\"",
                            need.name(),
                            wf.name
                        ),
                        format!("needs must name a job of workflow \"{}\"", wf.name),
                    )),
                    Err(message) => self.diagnostics.push(Diagnostic::new(
                        Code::E112,
                        file,
                        position(&dynamic.location),
                        format!("Dynamic job: {message}"),
                        "when is one of 'on-success', 'always', 'on-skip', 'on-failure', or an array of job statuses",
                    )),
                }
            }
            lock_jobs.push((
                dynamic.index as usize,
                LockJob::Dynamic(DynamicJob {
                    source: RuleSource {
                        file: file.to_string(),
                        index: dynamic.index,
                    },
                    group: dynamic.group.clone(),
                    needs,
                }),
            ));
        }
        lock_jobs.sort_by_key(|(i, _)| *i);
        for trigger in &wf.triggers {
            if let Err(err) = trigger.validate() {
                let hint = match trigger {
                    Trigger::Schedule { .. } => {
                        "a schedule takes five cron fields (`0 3 * * 1-5`) and an IANA time zone"
                    }
                    Trigger::Dispatch { .. } => {
                        "dispatch inputs are z.string(), z.number(), z.boolean(), z.enum() or z.literal() with .optional(), .nullable(), .default(), .min(), .max(), .regex(), .int()"
                    }
                    _ => {
                        "branch, tag and path patterns are globs (`release/*`, `src/**`) or RegExps without look-around or backreferences"
                    }
                };
                self.diagnostics.push(Diagnostic::new(
                    Code::E110,
                    file,
                    position(&wf.location),
                    format!("Workflow \"{}\": invalid {} trigger: {err}", wf.name, trigger.kind()),
                    hint,
                ));
            }
        }
        let resolved_hash_files = match hash_files::resolve(self.root, &wf.hash_files) {
            Ok(files) => files,
            Err(err) => {
                self.diagnostics.push(Diagnostic::new(
                    Code::E110,
                    file,
                    position(&wf.location),
                    format!("Workflow \"{}\": invalid hashFiles pattern: {err}", wf.name),
                    "hashFiles takes repository-relative paths or globs such as `package.json` or `src/**/*.ts`",
                ));
                Vec::new()
            }
        };
        if let Err(err) = kici_engine::install::validate(&wf.registries, &wf.install_env) {
            self.diagnostics.push(Diagnostic::new(
 Code::E115,
                file,
                position(&wf.location),
                format!("Workflow \"{}\": {err}", wf.name),
                "registries: [{ url: 'https://npm.acme.dev', scope: '@acme', tokenSecret: 'production:NPM_TOKEN' }]; installEnv: ['production:SENTRY_AUTH_TOKEN']",
            ));
        }
        if self.diagnostics.len() > errors_before {
            return None;
        }
        let digest = hash_files::digest(self.root, &resolved_hash_files);
        let rules = wf
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| rule(file, &r.label, i as u32))
            .collect();
        Some(LockWorkflow {
            content_hash: content_hash(&self.sdk.bundle_hash, source, digest.as_deref()),
            compile_schema_version: COMPILE_SCHEMA_VERSION,
            source: SourceRef {
                file: file.to_string(),
                export: wf.export,
            },
            name: wf.name,
            triggers: wf.triggers,
            jobs: lock_jobs.into_iter().map(|(_, j)| j).collect(),
            rules,
            description: wf.description,
            hash_files: wf.hash_files,
            resolved_hash_files,
            hooks: HookFlags {
                has_on_cancel: wf.has_on_cancel,
                has_cleanup: wf.has_cleanup,
                has_on_success: wf.has_on_success,
                has_on_failure: wf.has_on_failure,
            },
            concurrency: wf.concurrency,
            timeout: wf.timeout,
            registries: wf.registries,
            install_env: wf.install_env,
        })
    }

    /// E108 for an option KiCI does not have, E109 for one this build does not implement.
    fn options(&mut self, file: &str, level: Level, names: &[String], at: Option<(u32, u32)>, owner: &str) {
        for name in names {
            let diagnostic = match check_option(level, name) {
                OptionVerdict::Honoured => continue,
                OptionVerdict::NotImplemented => Diagnostic::new(
                    Code::E109,
                    file,
                    at,
                    format!("{owner}: option \"{name}\" is not implemented by this build of KiCI"),
                    format!(
                        "remove \"{name}\" for now: this build would ignore it and run the {} as if it were not there",
                        level.as_str()
                    ),
                ),
                OptionVerdict::Unknown { did_you_mean } => Diagnostic::new(
                    Code::E108,
                    file,
                    at,
                    format!("{owner}: unknown {} option \"{name}\"", level.as_str()),
                    match did_you_mean {
                        Some(known) => format!("did you mean \"{known}\"?"),
                        None => format!(
                            "remove it; {}() options are listed in the SDK's index.d.ts",
                            level.as_str()
                        ),
                    },
                ),
            };
            self.diagnostics.push(diagnostic);
        }
    }

    fn job(&mut self, file: &str, index: usize, job: &JobDescription) -> Option<StaticJob> {
        let at = position(&job.location);
        let errors_before = self.diagnostics.len();
        self.options(file, Level::Job, &job.options, at, &format!("Job \"{}\"", job.name));
        for step in &job.step_options {
            let owner = format!("Job \"{}\" step \"{}\"", job.name, step.name);
            self.options(
                file,
                Level::Step,
                &step.options,
                position(&step.location).or(at),
                &owner,
            );
        }
        let mut ok = self.diagnostics.len() == errors_before;
        let mut matchers =
            |selectors: &[LabelSelector], what: &str, diagnostics: &mut Vec<Diagnostic>| -> Vec<LabelMatcher> {
                selectors
                    .iter()
                    .filter_map(|s| match s.to_matcher() {
                        Ok(m) => Some(m),
                        Err(err) => {
                            ok = false;
                            diagnostics.push(Diagnostic::new(
                                Code::E110,
                                file,
                                at,
                                format!("Job \"{}\": invalid {what} label pattern: {err}", job.name),
                                "use an exact label, a glob such as `gpu-*`, or a valid RegExp",
                            ));
                            None
                        }
                    })
                    .collect()
            };
        let runs_on = matchers(&job.runs_on, "runsOn", &mut self.diagnostics);
        let exclude_labels = matchers(&job.exclude_labels, "exclude", &mut self.diagnostics);
        let overlap: Vec<String> = runs_on
            .iter()
            .filter(|m| exclude_labels.contains(m))
            .map(LabelMatcher::display)
            .collect();
        if !overlap.is_empty() {
            ok = false;
            self.diagnostics.push(Diagnostic::new(
                Code::E111,
                file,
                at,
                format!(
                    "Job \"{}\": labels and exclude overlap on [{}]",
                    job.name,
                    overlap.join(", ")
                ),
                "a label cannot be both required and excluded; remove it from one list",
            ));
        }
        let mut needs = Vec::new();
        for need in &job.needs {
            match need {
                NeedDescription::Name(name) => needs.push(Need::Name(name.clone())),
                NeedDescription::Conditional { name, when } => {
                    let when = match when {
                        WhenDescription::Statuses(statuses) => Some(NeedsWhen::Statuses(statuses.clone())),
                        WhenDescription::Keyword(keyword) => NeedsWhen::parse(keyword),
                    };
                    match when {
                        Some(when) => needs.push(Need::new(name, &when)),
                        None => {
                            ok = false;
                            self.diagnostics.push(Diagnostic::new(
 Code::E112,
                                file,
                                at,
                                format!("Job \"{}\": unknown needs condition for \"{name}\"", job.name),
                                "when is one of 'on-success', 'always', 'on-skip', 'on-failure', or an array of job statuses",
                            ));
                        }
                    }
                }
            }
        }
        let matrix = match &job.matrix {
            None => None,
            Some(MatrixDescription::Dynamic) => Some(LockMatrix::Dynamic {
                source: MatrixSource {
                    file: file.to_string(),
                    job_name: job.name.clone(),
                },
            }),
            Some(MatrixDescription::Static { values }) => {
                let bound = matrix::static_upper_bound(values, &job.include);
                if bound > MAX_COMBINATIONS {
                    ok = false;
                    self.diagnostics.push(Diagnostic::new(
                        Code::E104,
                        file,
                        at,
                        format!(
                            "Job \"{}\": static matrix has {bound} combinations (max {MAX_COMBINATIONS})",
                            job.name
                        ),
                        "reduce the matrix dimensions or values; a job fans out to at most 256 combinations",
                    ));
                } else if let Err(err) = matrix::expand(&job.name, values, &job.include, &job.exclude) {
                    ok = false;
                    self.diagnostics.push(Diagnostic::new(
 Code::E113,
                        file,
                        at,
                        format!("Job \"{}\": {err}", job.name),
                        "matrix values are arrays of strings, numbers or booleans; include/exclude must leave at least one combination",
                    ));
                }
                Some(LockMatrix::Static { values: values.clone() })
            }
        };
        if let Some(err) = job.cache.iter().find_map(|spec| spec.validate().err()) {
            ok = false;
            self.diagnostics.push(Diagnostic::new(
                Code::E114,
                file,
                at,
                format!("Job \"{}\": {err}", job.name),
                "cache: { key: 'deps-' + lockHash, paths: ['node_modules'], restoreKeys: ['deps-'] }",
            ));
        }
        let environments = self.environments(job);
        let concurrency_group = match &job.concurrency_group {
            None => None,
            Some(EnvironmentDescription::Name { name }) => Some(LockName::Name(name.clone())),
            Some(EnvironmentDescription::Function { function }) => match purity::check(function) {
                Ok(()) => Some(LockName::Inline(InlineValue::new(function))),
                Err(reason) => {
                    ok = false;
                    self.diagnostics.push(Diagnostic::new(
                        Code::E109,
                        file,
                        at,
                        format!(
                            "Job \"{}\": a concurrencyGroup function that is not pure ({reason}) is not implemented by this build of KiCI",
                            job.name
                        ),
                        "make it pure (only its event parameter, locals and JSON/Math/String helpers), or give a string",
                    ));
                    None
                }
            },
        };
        let (env, dynamic_env) = match (&job.env, &job.env_function) {
            (_, Some(source)) => match self.inline(job, "env", source) {
                Some(value) => (Some(LockEnv::Inline(value)), false),
                None => (None, true),
            },
            (env, None) => (env.clone().map(LockEnv::Static), false),
        };
        if !ok {
            return None;
        }
        if matrix.is_none() && (job.max_parallel.is_some() || job.fail_fast.is_some()) {
            self.notes.push(format!(
                "[kici] Job \"{}\": maxParallel and failFast apply to the jobs of a matrix; this job has no matrix, so they change nothing.",
                job.name
            ));
        }
        let rules = job
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| rule(file, &r.label, (index * 100 + i) as u32))
            .collect();
        Some(StaticJob {
            name: job.name.clone(),
            runs_on,
            exclude_labels,
            runs_on_pick: Some(
                job.runs_on_pick
                    .unwrap_or(kici_engine::lockfile::RunsOnPick::Deterministic),
            ),
            needs,
            steps: job.steps.clone(),
            matrix,
            include: job.include.clone(),
            exclude: job.exclude.clone(),
            rules,
            description: job.description.clone(),
            checkout: job.checkout,
            cache: job.cache.clone(),
            environments,
            env,
            dynamic_env,
            init: job.init.clone(),
            approval: job.approval.clone(),
            secrets: job.secrets.clone(),
            hooks: HookFlags {
                has_on_cancel: job.has_on_cancel,
                has_cleanup: job.has_cleanup,
                has_on_success: job.has_on_success,
                has_on_failure: job.has_on_failure,
            },
            has_before_step: job.has_before_step,
            has_after_step: job.has_after_step,
            concurrency_group,
            grace_period: job.grace_period,
            max_parallel: job.max_parallel,
            fail_fast: job.fail_fast.unwrap_or(false),
            timeout: job.timeout,
        })
    }

    /// A job's environments for the lock: names, pure functions inlined, impure ones left to
    /// an init job.
    fn environments(&mut self, job: &JobDescription) -> Vec<LockEnvironment> {
        job.environments
            .iter()
            .map(|environment| match environment {
                EnvironmentDescription::Name { name } => LockEnvironment {
                    value: LockName::Name(name.clone()),
                    dynamic: false,
                },
                EnvironmentDescription::Function { function } => match self.inline(job, "environment", function) {
                    Some(value) => LockEnvironment {
                        value: LockName::Inline(value),
                        dynamic: false,
                    },
                    None => LockEnvironment {
                        value: LockName::Name(String::new()),
                        dynamic: true,
                    },
                },
            })
            .collect()
    }

    /// A pure function's source as an inline value the orchestrator evaluates; `None` for an
    /// impure one, which an init job evaluates on an agent (noted for the author).
    fn inline(&mut self, job: &JobDescription, what: &str, source: &str) -> Option<InlineValue> {
        match purity::check(source) {
            Ok(()) => Some(InlineValue::new(source)),
            Err(reason) => {
                self.notes.push(format!(
                    "[kici] Job \"{}\": {what} function is not pure ({reason}). An init job will be required, adding ~5-10s delay.",
                    job.name
                ));
                None
            }
        }
    }

    /// E101/E102/E103 for the workflow's needs graph, located at the offending job.
    fn graph(
        &mut self,
        file: &str,
        wf: &WorkflowDescription,
        statics: &[(usize, &JobDescription)],
        jobs: &[StaticJob],
    ) {
        // Generators are nodes too: jobs may need them, or their group (`__group:<name>`).
        let generators: Vec<(String, Vec<String>)> = wf
            .jobs
            .iter()
            .filter_map(|entry| match entry {
                JobEntry::Dynamic(dynamic) => Some((
                    dynamic
                        .group
                        .clone()
                        .unwrap_or_else(|| format!("dynamic-{}", dynamic.index)),
                    dynamic
                        .needs
                        .iter()
                        .filter_map(|need| need.to_need().ok())
                        .map(|need| need.name().to_string())
                        .collect(),
                )),
                JobEntry::Static(_) => None,
            })
            .collect();
        let graph: Vec<(&str, Vec<&str>)> = generators
            .iter()
            .map(|(name, needs)| (name.as_str(), needs.iter().map(String::as_str).collect()))
            .chain(
                jobs.iter()
                    .map(|j| (j.name.as_str(), j.needs.iter().map(Need::name).collect())),
            )
            .collect();
        let Err(err) = dag::validate(&graph) else { return };
        let location_of = |name: &str| {
            statics
                .iter()
                .find(|(_, j)| j.name == name)
                .and_then(|(_, j)| position(&j.location))
        };
        let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
        let diagnostic = match err {
            DagError::MissingDependency { job, need } => {
                let suggestion = match kici_engine::suggest::closest(&need, names.iter().copied()) {
                    Some(close) => format!("did you mean \"{close}\"?"),
                    None => format!(
                        "needs must name a job of workflow \"{}\": {}",
                        wf.name,
                        names.join(", ")
                    ),
                };
                Diagnostic::new(
                    Code::E101,
                    file,
                    location_of(&job),
                    format!(
                        "Job \"{job}\" needs \"{need}\", which does not exist in workflow \"{}\"",
                        wf.name
                    ),
                    suggestion,
                )
            }
            DagError::SelfReference { job } => Diagnostic::new(
                Code::E103,
                file,
                location_of(&job),
                format!("Job \"{job}\" depends on itself"),
                format!("remove \"{job}\" from its own needs"),
            ),
            DagError::Cycle { cycle } => Diagnostic::new(
                Code::E102,
                file,
                cycle.first().and_then(|job| location_of(job)),
                format!("Circular dependency: {}", cycle.join(" -> ")),
                "remove one of the needs in the cycle",
            ),
            DagError::DuplicateJob { job } => Diagnostic::new(
                Code::E106,
                file,
                location_of(&job),
                format!("Duplicate job name \"{job}\" in workflow \"{}\"", wf.name),
                "job names must be unique within a workflow; rename one of them",
            ),
        };
        self.diagnostics.push(diagnostic);
    }
}

fn rule(file: &str, label: &str, index: u32) -> LockRule {
    LockRule {
        kind: DynamicKind::Dynamic,
        label: label.to_string(),
        source: RuleSource {
            file: file.to_string(),
            index,
        },
    }
}
