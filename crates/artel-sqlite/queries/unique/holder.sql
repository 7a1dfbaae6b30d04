SELECT task_id FROM unique_key WHERE key = :key;
