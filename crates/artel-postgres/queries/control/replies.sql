SELECT body FROM control_replies WHERE ticket = $1 ORDER BY id
