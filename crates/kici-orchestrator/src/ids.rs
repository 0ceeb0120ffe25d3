//! The identifiers the orchestrator makes: time-ordered ids for rows (runs, jobs, events), and
//! the tokens callers present — 32 random bytes in hex (agent tokens prefixed `kat_`, trigger
//! tokens `ktt_`), of which only the SHA-256 is stored.

use kici_telemetry::os::random_hex;

/// Hex characters in a token: 32 random bytes.
const TOKEN_HEX_LEN: usize = 64;

pub fn new_admin_token() -> String {
    random_hex(TOKEN_HEX_LEN)
}

pub fn new_agent_token() -> String {
    format!("kat_{}", random_hex(TOKEN_HEX_LEN))
}

/// What a local source's post-receive hook presents (`ktt_` = KiCI trigger token).
pub fn new_trigger_token() -> String {
    format!("ktt_{}", random_hex(TOKEN_HEX_LEN))
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    kici_engine::hash::sha256_hex(token.as_bytes())
}

/// A time-ordered id for runs and jobs.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
