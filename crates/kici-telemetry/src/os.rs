//! What every service asks the operating system for besides I/O: the wall clock and
//! randomness. `kici-engine` does neither (callers pass `now` and ids in); the services call
//! these.

/// Milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `len` random lowercase hex characters, for tokens, secrets and id suffixes.
///
/// # Panics
/// When the operating system has no random source: a process that cannot make secrets must
/// not run.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(len);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_has_the_asked_length_in_lowercase_hex() {
        for len in [0, 1, 8, 48, 64] {
            let hex = random_hex(len);
            assert_eq!(hex.len(), len);
            assert!(
                hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{hex}"
            );
        }
        assert_ne!(random_hex(64), random_hex(64));
    }
}
