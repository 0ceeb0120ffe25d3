-- A GitHub App source's allowed repository owners (comma-separated logins): webhooks of an
-- installation on another account are refused. NULL: any account that installs the App.
ALTER TABLE sources ADD COLUMN allowed_owners TEXT;
