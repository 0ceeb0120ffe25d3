//! Resolving a workflow's install secrets (`registries` tokens, `installEnv`) when one of its
//! jobs is sent: each `'<environment>:<NAME>'` is read from the secrets that environment binds,
//! after its hard gates (disabled, branch restriction). An install cannot wait, so an
//! environment that would hold or delay the job is refused rather than waited for. What fails
//! is the reason of an `install_secrets` failure; it names references, never values.

use std::collections::BTreeMap;

use kici_engine::install::{NpmRegistry, SecretRef};
use kici_engine::protection::{self, Environment, Gate};
use kici_engine::protocol::{JobDispatch, Redacted};
use kici_store::StoreError;

use crate::scoped_secrets::{self, DEFAULT_ORG};
use crate::state::Shared;

/// What a job's install receives.
#[derive(Debug, Default)]
pub struct InstallSecrets {
    pub registries: Vec<NpmRegistry>,
    pub env: BTreeMap<String, Redacted>,
}

/// The install secrets of `dispatch`'s workflow, or why they cannot be given.
pub async fn resolve(state: &Shared, dispatch: &JobDispatch) -> Result<Result<InstallSecrets, String>, StoreError> {
    let config = &dispatch.job_config;
    if config.registries.is_empty() && config.install_env.is_empty() {
        return Ok(Ok(InstallSecrets::default()));
    }
    let branch = dispatch.event.target_branch.as_deref();
    let mut resolver = Resolver {
        state,
        branch,
        environments: BTreeMap::new(),
    };
    let mut secrets = InstallSecrets::default();
    for registry in &config.registries {
        let token = match resolver.value(&registry.token_secret).await? {
            Ok(token) => token,
            Err(reason) => {
                return Ok(Err(format!(
                    "registry {}: {reason}",
                    kici_engine::excerpt::excerpt(&registry.url)
                )));
            }
        };
        secrets.registries.push(NpmRegistry {
            url: registry.url.clone(),
            scope: registry.scope.clone(),
            always_auth: registry.always_auth,
            token,
        });
    }
    for reference in &config.install_env {
        match resolver.value(reference).await? {
            Ok(value) => {
                let name = reference.rsplit_once(':').map_or(reference.as_str(), |(_, name)| name);
                secrets.env.insert(name.to_string(), Redacted(value));
            }
            Err(reason) => return Ok(Err(format!("installEnv: {reason}"))),
        }
    }
    Ok(Ok(secrets))
}

/// Reads references, each environment's secrets once.
struct Resolver<'a> {
    state: &'a Shared,
    branch: Option<&'a str>,
    environments: BTreeMap<String, Result<BTreeMap<String, String>, String>>,
}

impl Resolver<'_> {
    async fn value(&mut self, reference: &str) -> Result<Result<String, String>, StoreError> {
        let secret = match SecretRef::parse(reference) {
            Ok(secret) => secret,
            Err(reason) => return Ok(Err(reason)),
        };
        if !self.environments.contains_key(secret.environment) {
            let values = self.environment(secret.environment).await?;
            self.environments.insert(secret.environment.to_string(), values);
        }
        Ok(match &self.environments[secret.environment] {
            Err(reason) => Err(reason.clone()),
            Ok(values) => values.get(secret.name).cloned().ok_or_else(|| {
                format!(
                    "secret '{}' is not bound by environment '{}' (hint: `kici-admin secret set {} {}` in a scope the environment binds)",
                    secret.name, secret.environment, secret.environment, secret.name
                )
            }),
        })
    }

    async fn environment(&self, name: &str) -> Result<Result<BTreeMap<String, String>, String>, StoreError> {
        let Some(environment) = self.state.store.get_environment(DEFAULT_ORG, name).await? else {
            return Ok(Err(protection::environment_missing(name)));
        };
        let bound: [&Environment; 1] = [&environment];
        match protection::evaluate(&bound, None, self.branch) {
            Gate::Pass => {}
            Gate::Reject(message) => return Ok(Err(message)),
            Gate::Hold(_) | Gate::Wait { .. } => {
                return Ok(Err(format!(
                    "environment '{name}' requires a review or a wait timer, which a dependency install cannot wait for (hint: keep registry tokens in an environment without reviewers)"
                )));
            }
        }
        let keys = &self.state.config.secret_keys;
        Ok(scoped_secrets::resolve(&self.state.store, keys, DEFAULT_ORG, &bound)
            .await?
            .map(|values| values.into_iter().map(|(key, secret)| (key, secret.value)).collect()))
    }
}
