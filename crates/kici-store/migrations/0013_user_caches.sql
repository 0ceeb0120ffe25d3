-- Caches authors keep between runs (`cache`, `ctx.cache`): one row per (organization,
-- repository, key), written only once its archive is stored, so a row always names a complete
-- object. The first save of a key wins; `last_used_at` drives expiry.
CREATE TABLE user_caches (
    org_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    object_key TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, scope, cache_key)
);
CREATE INDEX user_caches_last_used_at ON user_caches (last_used_at);
