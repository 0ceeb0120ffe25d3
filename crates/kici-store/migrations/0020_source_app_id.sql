-- A GitHub App source's App id: its webhooks name it (`X-GitHub-Hook-Installation-Target-ID`).
ALTER TABLE sources ADD COLUMN app_id TEXT;
