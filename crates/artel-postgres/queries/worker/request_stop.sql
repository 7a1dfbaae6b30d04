UPDATE workers SET stop_requested = true WHERE name = $1
