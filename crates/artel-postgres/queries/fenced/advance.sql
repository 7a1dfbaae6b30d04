-- Stores a larger value $3 under $1 unless a larger fence than $2 wrote before.
INSERT INTO fenced (key, fence, value) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET fence = excluded.fence, value = excluded.value
    WHERE excluded.fence >= fenced.fence AND excluded.value > fenced.value
