//! Scoped secrets `(org, scope, key)`, encrypted with the [`Keyring`] and bound to
//! `<org>:<scope>:<key>` (the associated data: a value copied to another key does not decrypt),
//! and what a job in some environments receives: the secrets and variables of the scopes they
//! bind (`kici_engine::protection::bound_values`). Values are opened only for the job that
//! receives them, at dispatch; nothing here logs one.

use std::collections::BTreeMap;

use kici_engine::protection::{Environment, Scoped, bound_values};
use kici_store::{SealedSecret, Store, StoreError};

use crate::secret_key::{Keyring, Sealed};
use crate::source_secrets::Resealed;

/// The only organisation.
pub const DEFAULT_ORG: &str = "default";

fn context(org_id: &str, scope: &str, key: &str) -> String {
    format!("{org_id}:{scope}:{key}")
}

/// `value` sealed for `(org, scope, key)`.
pub fn seal(keys: &Keyring, org_id: &str, scope: &str, key: &str, value: &str) -> SealedSecret {
    SealedSecret {
        org_id: org_id.to_string(),
        scope: scope.to_string(),
        key: key.to_string(),
        value: keys.seal(value, &context(org_id, scope, key)),
    }
}

fn output_context(run_id: &str, job_id: &str, key: &str) -> String {
    format!("output:{run_id}:{job_id}:{key}")
}

/// A job's secret output sealed for its run, job and key.
pub fn seal_output(keys: &Keyring, run_id: &str, job_id: &str, key: &str, value: &str) -> String {
    keys.seal(value, &output_context(run_id, job_id, key))
}

/// The secret outputs of the jobs `bases` of a run, decrypted for a job that needs them
/// (`scope` `output:<job>`); a later job's key replaces an earlier one's.
pub async fn outputs_for(
    store: &Store,
    keys: &Keyring,
    run_id: &kici_engine::ids::RunId,
    bases: &[&str],
) -> Result<Result<BTreeMap<String, Resolved>, String>, StoreError> {
    let mut resolved = BTreeMap::new();
    if bases.is_empty() {
        return Ok(Ok(resolved));
    }
    for output in store.secret_outputs(run_id, bases).await? {
        let context = output_context(&output.run_id, &output.job_id, &output.key);
        match keys.open(&output.value, &context) {
            Ok(opened) => {
                let scope = format!("output:{}", output.base_job_name);
                resolved.insert(
                    output.key,
                    Resolved {
                        scope,
                        value: opened.plaintext,
                    },
                );
            }
            Err(err) => {
                return Ok(Err(format!(
                    "secret output '{}' of job '{}' cannot be decrypted: {err}",
                    output.key, output.base_job_name
                )));
            }
        }
    }
    Ok(Ok(resolved))
}

/// The plaintext of a stored secret, or why it cannot be read (never the value).
pub fn open(keys: &Keyring, secret: &SealedSecret) -> Result<String, String> {
    keys.open(&secret.value, &context(&secret.org_id, &secret.scope, &secret.key))
        .map(|opened| opened.plaintext)
        .map_err(|err| {
            format!(
                "secret '{}' in scope '{}' cannot be decrypted: {err}",
                secret.key, secret.scope
            )
        })
}

/// A secret as a job receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub scope: String,
    pub value: String,
}

/// The secrets a job in `environments` receives, decrypted; the first secret that does not
/// decrypt is the error (a `secret_resolution` failure).
pub async fn resolve(
    store: &Store,
    keys: &Keyring,
    org_id: &str,
    environments: &[&Environment],
) -> Result<Result<BTreeMap<String, Resolved>, String>, StoreError> {
    if environments.is_empty() {
        return Ok(Ok(BTreeMap::new()));
    }
    let sealed = store.sealed_secrets(Some(org_id)).await?;
    let candidates: Vec<Scoped<'_, &SealedSecret>> = sealed
        .iter()
        .map(|s| Scoped {
            scope: &s.scope,
            key: &s.key,
            value: s,
        })
        .collect();
    let mut resolved = BTreeMap::new();
    for (key, (scope, secret)) in bound_values(environments, &candidates) {
        match open(keys, secret) {
            Ok(value) => resolved.insert(key, Resolved { scope, value }),
            Err(err) => return Ok(Err(err)),
        };
    }
    Ok(Ok(resolved))
}

/// The variables a job in `environments` receives, by name.
pub async fn variables(
    store: &Store,
    org_id: &str,
    environments: &[&Environment],
) -> Result<BTreeMap<String, String>, StoreError> {
    if environments.is_empty() {
        return Ok(BTreeMap::new());
    }
    let stored = store.list_variables(org_id, None).await?;
    let candidates: Vec<Scoped<'_, &str>> = stored
        .iter()
        .map(|v| Scoped {
            scope: &v.scope,
            key: &v.name,
            value: v.value.as_str(),
        })
        .collect();
    Ok(bound_values(environments, &candidates)
        .into_iter()
        .map(|(name, (_, value))| (name, value.to_string()))
        .collect())
}

/// Re-encrypts every scoped secret under the current key (`rotate-key`). A value another
/// orchestrator changed meanwhile is left to it.
pub async fn reseal(store: &Store, keys: &Keyring) -> Result<Resealed, StoreError> {
    let mut result = Resealed::default();
    for secret in store.sealed_secrets(None).await? {
        let field = context(&secret.org_id, &secret.scope, &secret.key);
        let opened = match keys.open(&secret.value, &field) {
            Ok(opened) => opened,
            Err(err) => {
                result
                    .failures
                    .push(format!("secret `{}` in scope `{}`: {err}", secret.key, secret.scope));
                continue;
            }
        };
        if opened.sealed == Sealed::Current {
            result.already_current += 1;
            continue;
        }
        let resealed = SealedSecret {
            value: keys.seal(&opened.plaintext, &field),
            ..secret.clone()
        };
        if store.replace_sealed_secret(&resealed, &secret.value).await? {
            result.re_encrypted += 1;
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_key::SecretKey;

    fn keyring() -> Keyring {
        Keyring::new(SecretKey::from_bytes(&[7; 32]), None)
    }

    #[test]
    fn a_sealed_secret_opens_only_under_its_own_key_triple() {
        let keys = keyring();
        let sealed = seal(&keys, "default", "production", "DEPLOY_KEY", "s3cr3t");
        assert!(!sealed.value.contains("s3cr3t"));
        assert_eq!(open(&keys, &sealed).as_deref(), Ok("s3cr3t"));
        let moved = SealedSecret {
            scope: "staging".into(),
            ..sealed
        };
        let err = open(&keys, &moved).unwrap_err();
        assert!(
            err.starts_with("secret 'DEPLOY_KEY' in scope 'staging' cannot be decrypted"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"));
    }
}
