-- A generic source's clone credentials, encrypted by the orchestrator like its webhook secret
-- in `secret` (`enc:v1:<key id>:<base64>`), and never part of `git_url`. The orchestrator
-- encrypts the plaintext secrets of older databases at start; SQL cannot, without the key.
ALTER TABLE sources ADD COLUMN credentials TEXT;
