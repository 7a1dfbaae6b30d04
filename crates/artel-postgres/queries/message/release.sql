-- Gives a held message back, claimable at once. The delivery it undoes does not count
-- towards max deliveries (it was handed back, not lost with its worker).
UPDATE messages
SET visible_at = $3, lease_token = NULL, deliveries = greatest(deliveries - 1, 0)
WHERE id = $1 AND lease_token = $2
