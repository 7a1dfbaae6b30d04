-- Gives a held message back: claimable at once by anyone.
UPDATE messages SET visible_at = :now, lease_token = NULL WHERE id = :id AND lease_token = :token
