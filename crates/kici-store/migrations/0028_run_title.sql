-- What a run is about and who caused it, for lists: the pushed commit's title (or a pull
-- request's) and the sender; from the run's event, at creation. Older runs have neither.
ALTER TABLE runs ADD COLUMN title TEXT;
ALTER TABLE runs ADD COLUMN actor TEXT;
