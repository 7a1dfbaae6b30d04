DELETE FROM chord_parts WHERE expires_at <= :now
