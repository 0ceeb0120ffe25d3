//! Auto-scalers: starting an agent when no connected agent fits a queued job.
//!
//! - [`config`]: `scalers.yaml` (`KICI_SCALER_CONFIG_PATH`) plus `scalers.d/*.yaml`
//!   (`KICI_SCALER_CONFIG_DIR`), read strictly. Unknown keys, wrong types and every schema rule
//!   of the operator spec (§1.7) are errors with the spec's texts; all problems of a file set are
//!   reported together, and an invalid configuration is never partly applied (a reload keeps
//!   the running one, logging [`RELOAD_FAILED_MESSAGE`]).
//! - [`routing`]: which scaler and label set serve a job's `runsOn` / `excludeLabels`, and
//!   whether `globalMaxAgents` and the scaler's `maxAgents` allow a spawn now ([`admit`]).
//! - [`manager`]: the dispatcher's entry point; tracks spawned agents (they count toward the
//!   caps from the decision on), supervises each one, and keeps the configuration.
//! - [`backend`]: the spawn request, the agent's environment, and the started instance;
//!   [`bare_metal`] starts local processes, [`container`] containers through the Docker
//!   Engine API (Docker or Podman), [`firecracker`] microVMs through the Firecracker
//!   API ([`unix_http`] speaks HTTP on the engines' unix sockets).
//! - [`milestones`]: `scaler.provisioning` … `scaler.failed` into the run timeline, the job's
//!   `provisioning.jsonl` and the queue entry's `last_provisioning_error`; [`capture`] keeps
//!   the last 50 lines of the agent's output; [`health`] makes the `scaler:<name>` diagnose rows.

pub mod backend;
pub mod bare_metal;
pub mod capture;
pub mod config;
pub mod container;
pub mod firecracker;
pub mod health;
pub mod manager;
pub mod milestones;
pub mod routing;
pub mod unix_http;

pub use config::{ReloadDiff, ScalerConfig, ScalerConfigError, from_yaml_str, load, reload_diff};
pub use manager::{EPHEMERAL_TOKEN_TYPE, ScalerManager, SpawnedAgent, ephemeral_token_label};
pub use routing::{Admission, AgentCounts, CapacityReason, NO_BACKEND_MESSAGE, admit, route};
