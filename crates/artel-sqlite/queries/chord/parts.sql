SELECT result FROM chord_parts WHERE group_id = :group_id ORDER BY idx
