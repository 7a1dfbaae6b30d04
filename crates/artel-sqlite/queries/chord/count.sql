SELECT count(*) FROM chord_parts WHERE group_id = :group_id
