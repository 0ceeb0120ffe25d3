-- A source verified by the sender's address (`ip_allowlist`): its ranges, comma-separated.
ALTER TABLE sources ADD COLUMN allowed_ips TEXT;
