-- Fewer writes per task (docs/postgres.md, "Writes per task").
-- The recent-tasks index and the per-minute counts are for looking, never for
-- correctness: unlogged, they cost no WAL; a server crash empties them (as restarting
-- Flower empties its view) and standbys do not see them.
ALTER TABLE history SET UNLOGGED;
ALTER TABLE minutes SET UNLOGGED;
-- Heartbeats name the messages they keep, by primary key: no index on the holder, one
-- index entry fewer per claim.
DROP INDEX messages_holder;
