-- The teams an admin token's holder belongs to (JSON array), for reviewer clauses `team:<name>`.
ALTER TABLE admin_tokens ADD COLUMN teams TEXT;
