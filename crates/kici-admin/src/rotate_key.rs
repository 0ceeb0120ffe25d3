//! `kici-admin rotate-key`: re-encrypts every stored secret (webhook secrets, clone
//! credentials) under the orchestrator's current key (`POST /api/v1/admin/secrets/rotate-key`,
//! owner token). Run it after restarting the orchestrator with the new key in
//! `KICI_SECRET_KEY` and the previous one in `KICI_SECRET_KEY_OLD`; afterwards the old key can
//! be dropped.

use kici_client::client::ApiClient;
use kici_engine::api::admin::RotatedKey;

pub async fn run(client: &ApiClient) -> anyhow::Result<()> {
    let rotated: RotatedKey = client
        .post(&["api", "v1", "admin", "secrets", "rotate-key"], &serde_json::json!({}))
        .await?;
    print!("{}", render(&rotated));
    Ok(())
}

fn render(rotated: &RotatedKey) -> String {
    format!(
        "Re-encrypted {} secrets, {} already current (key {}).\n",
        rotated.re_encrypted, rotated.already_current, rotated.key_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary() {
        let rotated = RotatedKey {
            key_id: "1a2b3c4d".into(),
            re_encrypted: 3,
            already_current: 1,
        };
        assert_eq!(
            render(&rotated),
            "Re-encrypted 3 secrets, 1 already current (key 1a2b3c4d).\n"
        );
    }
}
