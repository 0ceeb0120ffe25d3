//! Caches authors keep between runs (`user_caches`): one entry per organization, repository and
//! key, recorded after its archive is stored. The first save of a key wins (`ON CONFLICT DO
//! NOTHING`); a restore reads the exact key or the newest entry starting with a prefix.

use sqlx::any::AnyRow;

use crate::{Result, Store, get, q};

/// One stored cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCache {
    pub org_id: String,
    /// The repository it belongs to.
    pub scope: String,
    pub cache_key: String,
    pub object_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at: i64,
    pub last_used_at: i64,
}

const COLUMNS: &str = "org_id, scope, cache_key, object_key, sha256, size_bytes, created_at, last_used_at";

fn row_to_cache(row: &AnyRow) -> Result<UserCache> {
    Ok(UserCache {
        org_id: get(row, "org_id")?,
        scope: get(row, "scope")?,
        cache_key: get(row, "cache_key")?,
        object_key: get(row, "object_key")?,
        sha256: get(row, "sha256")?,
        size_bytes: get(row, "size_bytes")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

impl Store {
    /// The entry for `key` exactly, else the newest whose key starts with one of `prefixes`
    /// (tried in order); its use is recorded at `now`.
    pub async fn find_user_cache(
        &self,
        org_id: &str,
        scope: &str,
        key: &str,
        prefixes: &[String],
        now: i64,
    ) -> Result<Option<UserCache>> {
        let exact = format!("SELECT {COLUMNS} FROM user_caches WHERE org_id = $1 AND scope = $2 AND cache_key = $3");
        let mut found = sqlx::query(sqlx::AssertSqlSafe(exact))
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("find user cache"))?;
        // `substr` rather than LIKE: a key may hold `%` or `_`.
        let by_prefix = format!(
            "SELECT {COLUMNS} FROM user_caches WHERE org_id = $1 AND scope = $2 AND substr(cache_key, 1, CAST($3 AS INTEGER)) = $4
             ORDER BY created_at DESC, cache_key DESC LIMIT 1"
        );
        for prefix in prefixes {
            if found.is_some() {
                break;
            }
            found = sqlx::query(sqlx::AssertSqlSafe(by_prefix.clone()))
                .bind(org_id)
                .bind(scope)
                .bind(prefix.chars().count() as i64)
                .bind(prefix)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("find user cache by prefix"))?;
        }
        let Some(row) = found else { return Ok(None) };
        let cache = row_to_cache(&row)?;
        sqlx::query("UPDATE user_caches SET last_used_at = $4 WHERE org_id = $1 AND scope = $2 AND cache_key = $3")
            .bind(org_id)
            .bind(scope)
            .bind(&cache.cache_key)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(q("touch user cache"))?;
        Ok(Some(cache))
    }

    /// Whether an entry for `key` exists.
    pub async fn user_cache_exists(&self, org_id: &str, scope: &str, key: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS found FROM user_caches WHERE org_id = $1 AND scope = $2 AND cache_key = $3")
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("user cache exists"))?;
        Ok(row.is_some())
    }

    /// Bytes the organization's caches take.
    pub async fn user_cache_usage(&self, org_id: &str) -> Result<u64> {
        // SUM of a BIGINT is a numeric on PostgreSQL: cast it back.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) AS used FROM user_caches WHERE org_id = $1",
        )
        .bind(org_id)
        .fetch_one(&self.pool)
        .await
        .map_err(q("user cache usage"))?;
        let used: i64 = get(&row, "used")?;
        Ok(used.max(0) as u64)
    }

    /// Records a stored cache; `false` when its key was saved first by someone else.
    pub async fn insert_user_cache(&self, cache: &UserCache) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO user_caches (org_id, scope, cache_key, object_key, sha256, size_bytes, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id, scope, cache_key) DO NOTHING",
        )
        .bind(&cache.org_id)
        .bind(&cache.scope)
        .bind(&cache.cache_key)
        .bind(&cache.object_key)
        .bind(&cache.sha256)
        .bind(cache.size_bytes)
        .bind(cache.created_at)
        .bind(cache.last_used_at)
        .execute(&self.pool)
        .await
        .map_err(q("insert user cache"))?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Entries last used before `before`, oldest first.
    pub async fn user_caches_unused_since(&self, before: i64, limit: i64) -> Result<Vec<UserCache>> {
        let sql = format!("SELECT {COLUMNS} FROM user_caches WHERE last_used_at < $1 ORDER BY last_used_at LIMIT $2");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(q("unused user caches"))?;
        rows.iter().map(row_to_cache).collect()
    }

    /// Every entry of an organization, newest first.
    pub async fn list_user_caches(&self, org_id: &str) -> Result<Vec<UserCache>> {
        let sql = format!("SELECT {COLUMNS} FROM user_caches WHERE org_id = $1 ORDER BY created_at DESC, cache_key");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list user caches"))?;
        rows.iter().map(row_to_cache).collect()
    }

    /// Forgets an entry (its object is deleted by the caller); `false` when it was gone.
    pub async fn delete_user_cache(&self, org_id: &str, scope: &str, key: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM user_caches WHERE org_id = $1 AND scope = $2 AND cache_key = $3")
            .bind(org_id)
            .bind(scope)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(q("delete user cache"))?;
        Ok(deleted.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::stores;

    use super::UserCache;

    fn cache(key: &str, size: i64, created_at: i64) -> UserCache {
        UserCache {
            org_id: "default".into(),
            scope: "acme/app".into(),
            cache_key: key.into(),
            object_key: format!("cache/{key}.tar.gz"),
            sha256: "ab".repeat(32),
            size_bytes: size,
            created_at,
            last_used_at: created_at,
        }
    }

    #[tokio::test]
    async fn the_first_save_wins_and_restores_fall_back_to_the_newest_prefix_match() {
        for (db, store, _dir) in stores().await {
            assert!(
                store
                    .insert_user_cache(&cache("deps-linux-aaa", 100, 10))
                    .await
                    .unwrap(),
                "{db}"
            );
            assert!(store.insert_user_cache(&cache("deps-linux-bbb", 50, 20)).await.unwrap());
            assert!(store.insert_user_cache(&cache("deps_%odd", 5, 30)).await.unwrap());
            assert!(
                !store
                    .insert_user_cache(&cache("deps-linux-aaa", 999, 40))
                    .await
                    .unwrap()
            );
            assert_eq!(store.user_cache_usage("default").await.unwrap(), 155, "{db}");
            assert_eq!(store.user_cache_usage("other").await.unwrap(), 0);

            let exact = store
                .find_user_cache("default", "acme/app", "deps-linux-aaa", &["deps-".into()], 100)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((exact.cache_key.as_str(), exact.size_bytes), ("deps-linux-aaa", 100));
            let newest = store
                .find_user_cache(
                    "default",
                    "acme/app",
                    "deps-linux-ccc",
                    &["nope-".into(), "deps-linux-".into()],
                    200,
                )
                .await
                .unwrap()
                .unwrap();
            assert_eq!(newest.cache_key, "deps-linux-bbb", "{db}");
            // `_` and `%` are plain characters in a prefix.
            let odd = store
                .find_user_cache("default", "acme/app", "x", &["deps_%".into()], 200)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(odd.cache_key, "deps_%odd");
            assert!(
                store
                    .find_user_cache("default", "other/repo", "deps-linux-aaa", &["deps-".into()], 200)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                store
                    .user_cache_exists("default", "acme/app", "deps-linux-bbb")
                    .await
                    .unwrap()
            );

            // Entries restored at 100 and 200 are recent; the rest is unused since before 150.
            let unused: Vec<String> = store
                .user_caches_unused_since(150, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.cache_key)
                .collect();
            assert_eq!(unused, ["deps-linux-aaa"], "{db}");
            assert!(
                store
                    .delete_user_cache("default", "acme/app", "deps-linux-aaa")
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .delete_user_cache("default", "acme/app", "deps-linux-aaa")
                    .await
                    .unwrap()
            );
            assert_eq!(store.list_user_caches("default").await.unwrap().len(), 2);
        }
    }
}
