-- The names (never values) of the secrets a step read, as a JSON array; NULL when none.
ALTER TABLE steps ADD COLUMN secrets_accessed TEXT;
