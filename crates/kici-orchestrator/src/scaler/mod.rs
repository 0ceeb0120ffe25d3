//! Auto-scalers: starting an agent when no connected agent fits a queued job. One directory
//! per backend, each holding its settings (`config.rs`) beside the code that runs it
//! (`instance.rs`).
//!
//! - `config`: `scalers.yaml` (`KICI_SCALER_CONFIG_PATH`) plus `scalers.d/*.yaml`
//!   (`KICI_SCALER_CONFIG_DIR`), read strictly: `raw` (the file as written), `load` (files,
//!   drop-ins, parse errors with hints), `validate` (every problem collected, the spec's texts),
//!   `diff` (what a reload changes). An invalid configuration is never partly applied (a reload
//!   keeps the running one, logging `RELOAD_FAILED_MESSAGE`).
//! - `routing`: which scaler and label set serve a job's `runsOn` / `excludeLabels`, and
//!   whether `globalMaxAgents` and the scaler's `maxAgents` allow a spawn now (`admit`).
//! - `manager`: the dispatcher's entry point; tracks spawned agents (they count toward the
//!   caps from the decision on), supervises each one, and keeps the configuration.
//! - `backend`: the spawn request, the agent's environment, and the started instance;
//!   `bare_metal` starts local processes, `container` containers through the Docker Engine
//!   API (Docker or Podman), `firecracker` microVMs through the Firecracker API (`unix_http`
//!   speaks HTTP on the engines' unix sockets). Every way a start fails is a `SpawnError`
//!   (`error`), whose text is the operator's `last_provisioning_error`.
//! - `milestones`: `scaler.provisioning` … `scaler.failed` into the run timeline, the job's
//!   `provisioning.jsonl` and the queue entry's `last_provisioning_error`; `capture` keeps
//!   the last 50 lines of the agent's output; `health` makes the `scaler:<name>` diagnose rows.

pub(crate) mod backend;
mod bare_metal;
mod capture;
pub(crate) mod config;
pub(crate) mod container;
mod error;
mod firecracker;
pub(crate) mod health;
mod manager;
mod milestones;
mod routing;
mod unix_http;

pub use config::{ParseError, ReloadDiff, ScalerConfig, ScalerConfigError, from_yaml_str, load, reload_diff};
pub(crate) use manager::{EPHEMERAL_TOKEN_TYPE, ephemeral_token_label};
pub use manager::{ScalerContext, ScalerManager, ScalerTask, SpawnSettings};
pub use routing::{Route, route};
