-- Replaces a task's record; REPLACE deletes the old row, so the new one takes the next seq.
INSERT OR REPLACE INTO history (task_id, state, task, queue, updated, record)
VALUES (:task_id, :state, :task, :queue, :updated, :record)
