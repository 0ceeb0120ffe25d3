//! Masking of agent tokens in text: a `kat_` followed by 64 hex digits becomes `kat_***`.
//! Service logs pass every line through it; `kici-admin debug-bundle` passes every file.
//!
//! Not here: other secrets (the bundle's allowlist redaction lives in `kici-admin`).

/// Replaces every `kat_` followed by 64 hex digits with `kat_***`.
pub fn mask_agent_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("kat_") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 4..];
        let hex_len = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex_len >= 64 {
            out.push_str("kat_***");
            rest = &after[hex_len..];
        } else {
            out.push_str("kat_");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_tokens_are_masked() {
        let token = format!("kat_{}", "ab".repeat(32));
        assert_eq!(mask_agent_tokens(&format!("token={token} x")), "token=kat_*** x");
        assert_eq!(mask_agent_tokens("kat_short"), "kat_short");
    }
}
