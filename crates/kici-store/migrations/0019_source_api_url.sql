-- A forge source's API base URL, for commit statuses (`--api-url`; derived from the clone URL
-- when NULL).
ALTER TABLE sources ADD COLUMN api_url TEXT;
