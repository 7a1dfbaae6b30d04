-- Stores a larger value unless a larger fence wrote before.
INSERT INTO fenced (key, fence, value) VALUES (:key, :fence, :value)
ON CONFLICT (key) DO UPDATE SET fence = excluded.fence, value = excluded.value
    WHERE excluded.fence >= fenced.fence AND excluded.value > fenced.value;
