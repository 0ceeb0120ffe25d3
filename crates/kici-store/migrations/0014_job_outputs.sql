-- What a job's steps returned (JSON), passed to the jobs that need it as `ctx.needs.<job>.result`.
ALTER TABLE jobs ADD COLUMN outputs TEXT;
