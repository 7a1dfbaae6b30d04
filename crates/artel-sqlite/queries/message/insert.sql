INSERT INTO messages (queue, priority, visible_at, task_id, envelope, grp)
VALUES (:queue, :priority, :visible_at, :task_id, :envelope, :grp)
