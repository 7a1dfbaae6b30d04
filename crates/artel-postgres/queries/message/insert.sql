-- Publishes a batch of messages to one queue in one statement.
INSERT INTO messages (queue, priority, visible_at, task_id, envelope)
SELECT $1, m.priority, m.visible_at, m.task_id, m.envelope
FROM UNNEST($2::smallint[], $3::bigint[], $4::text[], $5::bytea[]) AS m(priority, visible_at, task_id, envelope)
