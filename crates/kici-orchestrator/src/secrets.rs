//! Token generation and hashing. Tokens are 32 random bytes in hex (agent tokens prefixed
//! `kat_`); only their SHA-256 is stored.

/// 64 random hex characters.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_admin_token() -> String {
    random_hex()
}

pub fn new_agent_token() -> String {
    format!("kat_{}", random_hex())
}

/// What a local source's post-receive hook presents (`ktt_` = KiCI trigger token).
pub fn new_trigger_token() -> String {
    format!("ktt_{}", random_hex())
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    kici_engine::hash::sha256_hex(token.as_bytes())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time-ordered id for runs and jobs.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
