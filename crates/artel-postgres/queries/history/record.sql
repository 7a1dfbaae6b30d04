-- Replaces task $1's record; an update draws the next seq, so the row sorts as newest.
INSERT INTO history (task_id, state, task, queue, updated, record) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (task_id) DO UPDATE
SET seq = nextval('history_seq'), state = excluded.state, task = excluded.task, queue = excluded.queue,
    updated = excluded.updated, record = excluded.record
