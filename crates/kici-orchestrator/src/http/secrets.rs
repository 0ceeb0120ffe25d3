//! Scoped secrets, variables, environments and the audit log under `/api/v1/admin`. Every
//! change is written with its `secret_audit_log` entry in one transaction; a secret's value
//! leaves only through `POST …/secrets/reveal` (owner and admin tokens; audited) and reaches
//! jobs at dispatch.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kici_engine::api::secrets::{
    AuditEntry, AuditList, EnvironmentChange, EnvironmentList, RevealedSecret, SecretList, ValueSet, VariableList,
};
use kici_engine::protection::{DEFAULT_HOLD_EXPIRY_SECONDS, Environment, valid_key, valid_name, valid_scope};
use kici_store::{NewAudit, Upsert};
use serde::Deserialize;
use serde_json::Value;

use super::admin::DEFAULT_ORG;
use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use crate::clock::now_ms;
use crate::ids::new_id;
use crate::scoped_secrets;
use crate::state::Shared;

/// An audit entry for what `caller` did.
fn audit(caller: &Caller, action: &str, context_name: &str, keys: &[&str], metadata: Option<Value>) -> NewAudit {
    NewAudit {
        entry_id: new_id(),
        org_id: DEFAULT_ORG.to_string(),
        entry: AuditEntry {
            timestamp: now_ms(),
            action: action.to_string(),
            context_name: Some(context_name.to_string()),
            secret_keys: keys.iter().map(|k| k.to_string()).collect(),
            outcome: "success".to_string(),
            run_id: None,
            job_id: None,
            actor: caller.0.label.clone(),
            role: Some(caller.0.role.clone()),
            metadata,
        },
    }
}

fn check_scope(scope: &str) -> Result<(), ApiError> {
    if valid_scope(scope) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_scope",
        format!(
            "scope `{}` must be names of letters, digits, `-`, `_` or `.` separated by `/` (e.g. production or production/db)",
            kici_engine::excerpt::excerpt(scope)
        ),
    ))
}

fn check_key(key: &str, what: &str) -> Result<(), ApiError> {
    if valid_key(key) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_key",
        format!(
            "{what} `{}` must be an environment variable name: letters, digits and `_`, not starting with a digit (e.g. DEPLOY_KEY)",
            kici_engine::excerpt::excerpt(key)
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ScopeFilter {
    scope: Option<String>,
}

/// `GET /api/v1/admin/secrets[?scope=]`: names and times, never values.
pub async fn list_secrets(
    State(state): State<Shared>,
    Query(filter): Query<ScopeFilter>,
) -> ApiResult<Json<SecretList>> {
    let secrets = state.store.list_secrets(DEFAULT_ORG, filter.scope.as_deref()).await?;
    Ok(Json(SecretList { secrets }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    scope: String,
    key: String,
    value: String,
}

/// Largest secret value (what a step may mount as a file included).
const MAX_SECRET_BYTES: usize = 64 * 1024;

/// `PUT /api/v1/admin/secrets` `{scope, key, value}`.
pub async fn set_secret(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<SetSecret>,
) -> ApiResult<Json<ValueSet>> {
    check_scope(&body.scope)?;
    check_key(&body.key, "secret key")?;
    if body.value.is_empty() || body.value.len() > MAX_SECRET_BYTES {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!(
                "a secret value must be 1 to {MAX_SECRET_BYTES} bytes (got {})",
                body.value.len()
            ),
        ));
    }
    let sealed = scoped_secrets::seal(
        &state.config.secret_keys,
        DEFAULT_ORG,
        &body.scope,
        &body.key,
        &body.value,
    );
    let entry = audit(&caller, "secret.set", &body.scope, &[&body.key], None);
    let upsert = state.store.put_secret(&sealed, &entry).await?;
    tracing::info!(scope = %body.scope, key = %body.key, actor = %caller.0.label, "secret set");
    Ok(Json(ValueSet {
        scope: body.scope,
        key: body.key,
        created: upsert == Upsert::Created,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    scope: String,
    key: String,
}

fn secret_not_found(scope: &str, key: &str) -> ApiError {
    ApiError::not_found(format!(
        "no secret `{key}` in scope `{scope}` (hint: `kici-admin secret list --scope {scope}`)"
    ))
}

/// `POST /api/v1/admin/secrets/reveal` `{scope, key}`: the value, audited as
/// `secret.reveal`. A POST, so read-only (auditor) tokens cannot.
pub async fn reveal_secret(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<SecretRef>,
) -> ApiResult<Json<RevealedSecret>> {
    let entry = audit(&caller, "secret.reveal", &body.scope, &[&body.key], None);
    let Some(stored) = state
        .store
        .reveal_secret(DEFAULT_ORG, &body.scope, &body.key, &entry)
        .await?
    else {
        return Err(secret_not_found(&body.scope, &body.key));
    };
    let sealed = kici_store::SealedSecret {
        org_id: DEFAULT_ORG.to_string(),
        scope: body.scope.clone(),
        key: body.key.clone(),
        value: stored,
    };
    let value = scoped_secrets::open(&state.config.secret_keys, &sealed)
        .map_err(|err| ApiError::new(StatusCode::CONFLICT, "undecryptable", err))?;
    tracing::info!(scope = %body.scope, key = %body.key, actor = %caller.0.label, "secret revealed");
    Ok(Json(RevealedSecret {
        scope: body.scope,
        key: body.key,
        value,
    }))
}

/// `DELETE /api/v1/admin/secrets?scope=&key=`.
pub async fn delete_secret(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(target): Query<SecretRef>,
) -> ApiResult<StatusCode> {
    let entry = audit(&caller, "secret.delete", &target.scope, &[&target.key], None);
    if !state
        .store
        .delete_secret(DEFAULT_ORG, &target.scope, &target.key, &entry)
        .await?
    {
        return Err(secret_not_found(&target.scope, &target.key));
    }
    tracing::info!(scope = %target.scope, key = %target.key, actor = %caller.0.label, "secret deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/variables[?scope=]`.
pub async fn list_variables(
    State(state): State<Shared>,
    Query(filter): Query<ScopeFilter>,
) -> ApiResult<Json<VariableList>> {
    let variables = state.store.list_variables(DEFAULT_ORG, filter.scope.as_deref()).await?;
    Ok(Json(VariableList { variables }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetVariable {
    scope: String,
    name: String,
    value: String,
}

/// `PUT /api/v1/admin/variables` `{scope, name, value}`.
pub async fn set_variable(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<SetVariable>,
) -> ApiResult<Json<ValueSet>> {
    check_scope(&body.scope)?;
    check_key(&body.name, "variable name")?;
    let entry = audit(&caller, "variable.set", &body.scope, &[&body.name], None);
    let upsert = state
        .store
        .put_variable(DEFAULT_ORG, &body.scope, &body.name, &body.value, &entry)
        .await?;
    Ok(Json(ValueSet {
        scope: body.scope,
        key: body.name,
        created: upsert == Upsert::Created,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableRef {
    scope: String,
    name: String,
}

/// `DELETE /api/v1/admin/variables?scope=&name=`.
pub async fn delete_variable(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Query(target): Query<VariableRef>,
) -> ApiResult<StatusCode> {
    let entry = audit(&caller, "variable.delete", &target.scope, &[&target.name], None);
    if !state
        .store
        .delete_variable(DEFAULT_ORG, &target.scope, &target.name, &entry)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "no variable `{}` in scope `{}` (hint: `kici-admin variable list`)",
            target.name, target.scope
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/admin/environments`.
pub async fn list_environments(State(state): State<Shared>) -> ApiResult<Json<EnvironmentList>> {
    let environments = state.store.list_environments(DEFAULT_ORG).await?;
    Ok(Json(EnvironmentList { environments }))
}

fn environment_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no environment `{name}` (hint: `kici-admin environment list`, or create it with `kici-admin environment create {name}`)"
    ))
}

/// `GET /api/v1/admin/environments/:name`.
pub async fn show_environment(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Json<Environment>> {
    let environment = state.store.get_environment(DEFAULT_ORG, &name).await?;
    environment.map(Json).ok_or_else(|| environment_not_found(&name))
}

/// `change` applied to `environment`.
fn changed(mut environment: Environment, change: EnvironmentChange) -> Result<Environment, ApiError> {
    let EnvironmentChange {
        name,
        description,
        disabled,
        scopes,
        branches,
        reviewers,
        wait_timer_seconds,
        hold_expiry_seconds,
    } = change;
    if name.is_some_and(|n| n != environment.name) {
        return Err(ApiError::bad_request(
            "invalid_environment",
            "an environment cannot be renamed (hint: create one with the new name, then delete this one)",
        ));
    }
    if let Some(description) = description {
        environment.description = (!description.is_empty()).then_some(description);
    }
    environment.disabled = disabled.unwrap_or(environment.disabled);
    environment.scopes = scopes.unwrap_or(environment.scopes);
    environment.branches = branches.unwrap_or(environment.branches);
    environment.reviewers = reviewers.unwrap_or(environment.reviewers);
    environment.wait_timer_seconds = wait_timer_seconds.unwrap_or(environment.wait_timer_seconds);
    environment.hold_expiry_seconds = hold_expiry_seconds.unwrap_or(environment.hold_expiry_seconds);
    environment
        .validate()
        .map_err(|err| ApiError::bad_request("invalid_environment", err))?;
    Ok(environment)
}

/// `POST /api/v1/admin/environments`: a new environment; it binds the scope of its own name
/// unless `scopes` says otherwise.
pub async fn create_environment(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Json(change): Json<EnvironmentChange>,
) -> ApiResult<(StatusCode, Json<Environment>)> {
    let Some(name) = change.name.clone() else {
        return Err(ApiError::bad_request(
            "invalid_environment",
            "an environment needs a name",
        ));
    };
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "invalid_environment",
            format!(
                "environment name `{}` must be 1–64 letters, digits, `-`, `_` or `.` (e.g. production)",
                kici_engine::excerpt::excerpt(&name)
            ),
        ));
    }
    let fresh = Environment {
        name: name.clone(),
        description: None,
        disabled: false,
        scopes: vec![name.clone()],
        branches: Vec::new(),
        reviewers: Vec::new(),
        wait_timer_seconds: 0,
        hold_expiry_seconds: DEFAULT_HOLD_EXPIRY_SECONDS,
    };
    let environment = changed(fresh, change)?;
    let entry = audit(
        &caller,
        "environment.create",
        &name,
        &[],
        Some(serde_json::to_value(&environment).unwrap_or_default()),
    );
    if !state
        .store
        .put_environment(DEFAULT_ORG, &environment, true, &entry)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "environment_exists",
            format!("environment `{name}` exists already (hint: `kici-admin environment update {name} …`)"),
        ));
    }
    Ok((StatusCode::CREATED, Json(environment)))
}

/// `PATCH /api/v1/admin/environments/:name`: changes the fields given.
pub async fn update_environment(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(change): Json<EnvironmentChange>,
) -> ApiResult<Json<Environment>> {
    let Some(current) = state.store.get_environment(DEFAULT_ORG, &name).await? else {
        return Err(environment_not_found(&name));
    };
    let environment = changed(current, change)?;
    let entry = audit(
        &caller,
        "environment.update",
        &name,
        &[],
        Some(serde_json::to_value(&environment).unwrap_or_default()),
    );
    if !state
        .store
        .put_environment(DEFAULT_ORG, &environment, false, &entry)
        .await?
    {
        return Err(environment_not_found(&name));
    }
    Ok(Json(environment))
}

/// `DELETE /api/v1/admin/environments/:name`.
pub async fn delete_environment(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let entry = audit(&caller, "environment.delete", &name, &[], None);
    if !state.store.delete_environment(DEFAULT_ORG, &name, &entry).await? {
        return Err(environment_not_found(&name));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct AuditFilter {
    action: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/admin/audit[?action=&limit=]`: newest first, 100 by default, at most 1,000.
pub async fn list_audit(State(state): State<Shared>, Query(filter): Query<AuditFilter>) -> ApiResult<Json<AuditList>> {
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
    let entries = state
        .store
        .list_audit(DEFAULT_ORG, filter.action.as_deref(), limit)
        .await?;
    Ok(Json(AuditList { entries }))
}
