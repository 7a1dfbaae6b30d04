-- Publishes a batch of messages to queue $1 and, unless $6 is NULL, wakes the consumers
-- listening on channel $6 with one notification naming the queue (sent when the
-- transaction commits), in one statement.
WITH inserted AS (
    INSERT INTO messages (queue, priority, visible_at, task_id, envelope)
    SELECT $1, m.priority, m.visible_at, m.task_id, m.envelope
    FROM UNNEST($2::smallint[], $3::bigint[], $4::text[], $5::bytea[]) AS m(priority, visible_at, task_id, envelope)
    RETURNING 1
)
SELECT pg_notify($6::text, $1) FROM (SELECT count(*) FROM inserted) AS batch WHERE $6::text IS NOT NULL
