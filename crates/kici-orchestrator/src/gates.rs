//! What a job meets before it is queued (`execution.md` §2.5): its environments and `env` are
//! resolved (names as written, pure functions evaluated with the run's event), its
//! environments are looked up, its required secrets checked, and then the protection gates
//! decide: queue it, fail it (`environment_rules`, `secret_resolution`, `dynamic_eval`), hold
//! it for approvals or let it wait for a timer. Secret values are not read here: they are
//! decrypted at dispatch, for the agent that runs the job.

use kici_engine::event::EventEnvelope;
use kici_engine::failure::{InitFailure, InitFailureCategory, InitFailureScope};
use kici_engine::lockfile::{InlineValue, LockEnv, LockName, LockWorkflow, StaticJob};
use kici_engine::protection::{self, Environment, Gate, Hold, Scoped, bound_values};
use kici_store::StoreError;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::inline_eval;
use crate::jobs::{JobFacts, Prepared};
use crate::rows::lock_job;
use crate::scoped_secrets::{self, DEFAULT_ORG};
use crate::state::Shared;

/// What becomes of a job at its gates.
#[derive(Debug)]
pub enum Admission {
    Queue(Prepared),
    Fail(InitFailure),
    Hold(Hold),
    Wait { seconds: u64 },
}

/// A job with no gate of its own in an untrusted pull request's run: held for a maintainer.
pub fn trust_only(reason: &str) -> Admission {
    Admission::Hold(protection::trust_hold(reason))
}

/// The definition a job row runs: its workflow job, or its generated definition.
pub fn definition(workflow: &LockWorkflow, job: &JobFacts<'_>) -> Option<StaticJob> {
    match job.definition {
        Some(definition) => serde_json::from_str(definition).ok(),
        None => lock_job(workflow, job.base_job_name).cloned(),
    }
}

fn failure(category: InitFailureCategory, job: &str, message: String) -> InitFailure {
    InitFailure {
        scope: InitFailureScope::Job,
        category,
        message,
        job_name: Some(job.to_string()),
    }
}

/// Evaluates an inline function off the async threads (it may take its whole time limit).
async fn evaluate(value: &InlineValue, event: &Value) -> Result<Value, String> {
    let expression = value.expression.clone();
    let event = event.clone();
    tokio::task::spawn_blocking(move || inline_eval::evaluate(&expression, &event))
        .await
        .unwrap_or_else(|err| Err(format!("the evaluator stopped: {err}")))
}

/// What an init job's functions returned (`job.status` `initResult`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitResult {
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Map<String, Value>>,
}

impl InitResult {
    /// Reads an agent's report; the error says what is wrong with it.
    pub fn parse(value: &Value) -> Result<InitResult, String> {
        let result: InitResult = serde_json::from_value(value.clone())
            .map_err(|err| format!("the init job reported an unreadable result: {err}"))?;
        if let Some(name) = result
            .environments
            .iter()
            .flatten()
            .find(|n| !protection::valid_name(n))
        {
            return Err(format!(
                "an environment function returned '{}', which is not an environment name",
                kici_engine::excerpt::excerpt(name)
            ));
        }
        Ok(result)
    }
}

/// Resolves what the job's definition leaves to the run (environment names, `env`; impure
/// ones from `init`, its init job's result), looks its environments up and checks its required
/// secrets. With `gate`, the protection rules decide too, joined by the hold an untrusted pull
/// request's run calls for (`Some(reason)`); without (an approved or timed job), the job is
/// queued if it still resolves.
pub async fn admit(
    state: &Shared,
    event: &EventEnvelope,
    job: &StaticJob,
    init: Option<&InitResult>,
    gate: Option<Option<&str>>,
) -> Result<Admission, StoreError> {
    let event_json = serde_json::to_value(event).unwrap_or_default();
    let dynamic_failure = |what: &str, err: String| {
        Admission::Fail(failure(
            InitFailureCategory::DynamicEval,
            &job.name,
            format!("{what} function of job '{}' failed: {err}", job.name),
        ))
    };
    let mut names = Vec::new();
    // The init job resolved every environment of the job, in order.
    let from_init = init
        .and_then(|i| i.environments.clone())
        .filter(|_| job.environments.iter().any(|e| e.dynamic));
    for environment in &job.environments {
        let name = match &environment.value {
            _ if from_init.is_some() => continue,
            LockName::Name(name) => name.clone(),
            LockName::Inline(value) => {
                match evaluate(value, &event_json)
                    .await
                    .and_then(inline_eval::environment_name)
                {
                    Ok(name) => name,
                    Err(err) => return Ok(dynamic_failure("environment", err)),
                }
            }
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in from_init.into_iter().flatten() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let job_env = match &job.env {
        _ if job.dynamic_env => init.and_then(|i| i.env.clone()),
        Some(LockEnv::Inline(value)) => match evaluate(value, &event_json).await.and_then(inline_eval::env_values) {
            Ok(values) => Some(values),
            Err(err) => return Ok(dynamic_failure("env", err)),
        },
        _ => None,
    };
    let concurrency_group = match &job.concurrency_group {
        None => names.first().cloned(),
        Some(LockName::Name(group)) => Some(group.clone()),
        Some(LockName::Inline(value)) => match evaluate(value, &event_json)
            .await
            .and_then(inline_eval::environment_name)
        {
            Ok(group) => Some(group),
            Err(err) => return Ok(dynamic_failure("concurrencyGroup", err)),
        },
    };
    // Stored in every dispatch of the job and logged while it waits: bounded.
    if let Some(chars) = concurrency_group
        .as_ref()
        .map(|group| group.chars().count())
        .filter(|chars| *chars > kici_engine::failure::MAX_CONCURRENCY_GROUP_CHARS)
    {
        let message = format!(
            "concurrencyGroup of job '{}': {}",
            job.name,
            kici_engine::failure::concurrency_group_too_long(chars)
        );
        return Ok(Admission::Fail(failure(
            InitFailureCategory::DynamicEval,
            &job.name,
            message,
        )));
    }
    let mut environments = Vec::new();
    for name in &names {
        match state.store.get_environment(DEFAULT_ORG, name).await? {
            Some(environment) => environments.push(environment),
            None => {
                return Ok(Admission::Fail(failure(
                    InitFailureCategory::EnvironmentRules,
                    &job.name,
                    protection::environment_missing(name),
                )));
            }
        }
    }
    let bound: Vec<&Environment> = environments.iter().collect();
    if let Some(missing) = missing_secrets(state, &bound, &job.secrets).await? {
        return Ok(Admission::Fail(failure(
            InitFailureCategory::SecretResolution,
            &job.name,
            format!(
                "Secret resolution failed: job '{}' needs {missing}, which its environments ({}) do not bind (hint: `kici-admin secret set <scope> <KEY>` in a scope the environment binds)",
                job.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )));
    }
    let prepared = Prepared {
        variables: scoped_secrets::variables(&state.store, DEFAULT_ORG, &bound).await?,
        environments: names,
        concurrency_group,
        job_env,
    };
    let Some(trust_hold) = gate else {
        return Ok(Admission::Queue(prepared));
    };
    let mut gate = protection::evaluate(&bound, job.approval.as_ref(), event.target_branch.as_deref());
    if let Some(reason) = trust_hold {
        gate = protection::with_trust_hold(gate, reason);
    }
    Ok(match gate {
        Gate::Pass => Admission::Queue(prepared),
        Gate::Reject(message) => Admission::Fail(failure(InitFailureCategory::EnvironmentRules, &job.name, message)),
        Gate::Hold(hold) => Admission::Hold(hold),
        Gate::Wait { seconds } => Admission::Wait { seconds },
    })
}

/// The required keys no environment binds, as `'A', 'B'`; `None` when all are bound.
async fn missing_secrets(
    state: &Shared,
    environments: &[&Environment],
    required: &[String],
) -> Result<Option<String>, StoreError> {
    if required.is_empty() {
        return Ok(None);
    }
    let stored = state.store.list_secrets(DEFAULT_ORG, None).await?;
    let candidates: Vec<Scoped<'_, ()>> = stored
        .iter()
        .map(|s| Scoped {
            scope: &s.scope,
            key: &s.key,
            value: (),
        })
        .collect();
    let bound = bound_values(environments, &candidates);
    let missing: Vec<String> = required
        .iter()
        .filter(|key| !bound.contains_key(key.as_str()))
        .map(|key| format!("secret '{key}'"))
        .collect();
    Ok((!missing.is_empty()).then(|| missing.join(", ")))
}
