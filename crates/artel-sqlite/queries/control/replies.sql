SELECT body FROM control_replies WHERE ticket = :ticket ORDER BY id
