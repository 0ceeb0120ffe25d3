-- Where a registering push came from, for runs started later without a webhook: the clone URL
-- its payload named (sources without a URL of their own) and its GitHub App installation.
ALTER TABLE workflow_registrations ADD COLUMN clone_url TEXT;
ALTER TABLE workflow_registrations ADD COLUMN installation_id BIGINT;
