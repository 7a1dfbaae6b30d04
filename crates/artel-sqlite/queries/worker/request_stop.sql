UPDATE workers SET stop_requested = 1 WHERE name = :name
