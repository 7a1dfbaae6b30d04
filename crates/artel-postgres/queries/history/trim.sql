-- Keeps about the newest $1 records (seq has gaps, so at most that many).
DELETE FROM history WHERE seq <= (SELECT max(seq) FROM history) - $1
