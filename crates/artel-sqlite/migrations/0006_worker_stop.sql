-- A stop asked of a worker (the dashboard's "stop"), taken at its next report.
ALTER TABLE workers ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
