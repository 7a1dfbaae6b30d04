-- Gives a held message back: claimable at once by anyone. The delivery it undoes does
-- not count towards max deliveries (it was handed back, not lost with its worker).
UPDATE messages
SET visible_at = :now, lease_token = NULL, deliveries = max(deliveries - 1, 0)
WHERE id = :id AND lease_token = :token
