-- A pull request's run: whose workflows it runs and why (`kici_engine::trust::RunTrust`, JSON).
ALTER TABLE runs ADD COLUMN trust TEXT;
