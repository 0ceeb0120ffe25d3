-- Sources an operator turned off (their webhooks are refused), and the webhook secret a
-- rotation replaced, accepted too until `previous_secret_until` (epoch ms).
ALTER TABLE sources ADD COLUMN enabled BIGINT NOT NULL DEFAULT 1;
ALTER TABLE sources ADD COLUMN previous_secret TEXT;
ALTER TABLE sources ADD COLUMN previous_secret_until BIGINT;
