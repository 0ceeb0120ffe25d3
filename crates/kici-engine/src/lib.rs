//! KiCI's domain rules, shared by every process: statuses and the state machine, the lock
//! file, hashing, trigger/branch/path matching, label matching, matrix expansion, the needs DAG,
//! the event envelope and the runner protocol.
//!
//! Architecture invariant: this crate does no I/O (no files, clock, environment, network or
//! processes). Callers pass in what the rules need, so every rule is unit-tested in isolation.

pub mod api;
pub mod build_info;
pub mod cache;
pub mod dag;
pub mod description;
pub mod event;
pub mod excerpt;
pub mod failure;
pub mod forge;
pub mod git_auth;
pub mod hash;
pub mod host_env;
pub mod ids;
pub mod inputs;
pub mod install;
pub mod internal_error;
pub mod jsonpath;
pub mod labels;
pub mod lockfile;
pub mod mask;
pub mod matrix;
pub mod netmask;
pub mod options;
pub mod pattern;
pub mod platform_protocol;
pub mod protection;
pub mod protocol;
pub mod runner_protocol;
pub mod schedule;
pub mod status;
pub mod suggest;
pub mod trigger;
pub mod trust;
pub mod waiting;
