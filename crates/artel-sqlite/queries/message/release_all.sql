UPDATE messages SET visible_at = :now, lease_token = NULL WHERE lease_token = :token
