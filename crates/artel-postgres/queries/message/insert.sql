-- Publishes a batch of messages to queue $1 (groups $7, '' for none: a group joins the
-- queue's rotation, with '' beside it, holding the queue's fair lock shared so that
-- fair/forget.sql never drops a group a message is being published to) and, unless $6
-- is NULL, wakes the consumers
-- listening on channel $6 with one notification naming the queue (sent when the
-- transaction commits), in one statement.
WITH inserted AS (
    INSERT INTO messages (queue, priority, visible_at, task_id, envelope, grp)
    SELECT $1, m.priority, m.visible_at, m.task_id, m.envelope, m.grp
    FROM UNNEST($2::smallint[], $3::bigint[], $4::text[], $5::bytea[], $7::text[])
        AS m(priority, visible_at, task_id, envelope, grp)
    RETURNING 1
), joined AS (
    INSERT INTO fair_groups (queue, grp)
    SELECT DISTINCT $1, g.grp FROM UNNEST($7::text[]) AS named(grp), LATERAL (VALUES (named.grp), ('')) AS g(grp)
    WHERE named.grp <> '' AND EXISTS (SELECT pg_advisory_xact_lock_shared(hashtext('artel.fair.' || $1)))
    ON CONFLICT DO NOTHING
)
SELECT pg_notify($6::text, $1) FROM (SELECT count(*) FROM inserted) AS batch WHERE $6::text IS NOT NULL
