-- Every recorded member of chord $1, in member order.
SELECT result FROM chord_parts WHERE group_id = $1 ORDER BY idx
