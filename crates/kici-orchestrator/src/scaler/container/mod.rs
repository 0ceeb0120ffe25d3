//! The container scaler: agents in containers through the Docker Engine API (Docker or
//! Podman). [`config`] holds its settings and their checks; `instance` drives the engine.

pub(crate) mod config;
mod instance;

pub(crate) use instance::{AgentContainer, host_problems, instance_label, remove_orphans, socket, start};
