SELECT record FROM history WHERE task_id = $1
