INSERT INTO messages (queue, priority, visible_at, task_id, envelope)
VALUES (:queue, :priority, :visible_at, :task_id, :envelope)
