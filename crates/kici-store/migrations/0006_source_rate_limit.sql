-- Verified webhook deliveries a source may send per minute; more are answered 429.
ALTER TABLE sources ADD COLUMN rate_limit_rpm BIGINT NOT NULL DEFAULT 600;
