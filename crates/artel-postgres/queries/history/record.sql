-- Replaces each task's record, in the order given: row i is task $1[i] in state $2[i],
-- of task name $3[i] on queue $4[i], updated at $5[i] (unix ms), TaskRecord JSON $6[i].
-- Task ids are distinct. An update draws the next seq, so the row sorts as newest.
INSERT INTO history (task_id, state, task, queue, updated, record)
SELECT r.task_id, r.state, r.task, r.queue, r.updated, r.record
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
    WITH ORDINALITY AS r(task_id, state, task, queue, updated, record, n)
ORDER BY r.n
ON CONFLICT (task_id) DO UPDATE
SET seq = nextval('history_seq'), state = excluded.state, task = excluded.task, queue = excluded.queue,
    updated = excluded.updated, record = excluded.record
