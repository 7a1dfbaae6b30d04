SELECT record FROM history WHERE task_id = :task_id
