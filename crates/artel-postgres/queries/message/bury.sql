-- Moves message $1, if holder $2 holds it, to the dead letters with reason $3 at $4.
WITH gone AS (
    DELETE FROM messages WHERE id = $1 AND lease_token = $2
    RETURNING queue, task_id, deliveries, envelope
)
INSERT INTO dead (queue, task_id, reason, died_at, deliveries, envelope)
SELECT queue, task_id, $3, $4, deliveries, envelope FROM gone
