//! Auto-scalers: starting an agent when no connected agent fits a queued job.
//!
//! This module holds the foundation the backends and the dispatcher build on:
//!
//! - [`config`]: `scalers.yaml` (`KICI_SCALER_CONFIG_PATH`) plus `scalers.d/*.yaml`
//!   (`KICI_SCALER_CONFIG_DIR`), read strictly. Unknown keys, wrong types and every schema rule
//!   of the operator spec (§1.7) are errors with the spec's texts; all problems of a file set are
//!   reported together, and an invalid configuration is never partly applied (a reload keeps
//!   the running one, logging [`RELOAD_FAILED_MESSAGE`]).
//! - [`routing`]: which scaler and label set serve a job's `runsOn` / `excludeLabels`, and
//!   whether `globalMaxAgents` and the scaler's `maxAgents` allow a spawn now ([`admit`]).
//!
//! Both are pure except [`load`], which reads the files. The spawning backends (bare-metal,
//! container, Firecracker), warm pools and the dispatcher wiring come on top.

pub mod config;
pub mod routing;

pub use config::{
    AgentRole, AgentRoles, Backend, BackpressureMode, BareMetalBackend, BareMetalTarget, CONFIG_DIR_ENV,
    CONFIG_PATH_ENV, ConfigProblem, ContainerBackend, ContainerRuntime, ContainerTarget, DEFAULT_GLOBAL_MAX_AGENTS,
    FirecrackerBackend, FirecrackerNetwork, FirecrackerTarget, ImagePullPolicy, LabelSet, MachinePool, NetworkPolicy,
    ParseError, RELOAD_FAILED_MESSAGE, RESERVED_LABEL_MESSAGE, ReloadDiff, ResourceAmounts, ResourceCap, Resources,
    ScalerConfig, ScalerConfigError, ScalerEntry, ScalerType, SpawnTarget, WarmPool, from_yaml_str, load, reload_diff,
};
pub use routing::{
    Admission, AgentCounts, CapacityReason, NO_BACKEND_MESSAGE, QUEUED_NO_BACKEND_MESSAGE, Route, admit, route,
};
