//! The Firecracker scaler: agents in microVMs. [`config`] holds its settings (and the shared
//! `firecracker` network block) and their checks; `instance` boots, watches and tears down a VM.

pub(crate) mod config;
mod instance;

pub(crate) use instance::{IpPool, MicroVm, host_problems, start};
