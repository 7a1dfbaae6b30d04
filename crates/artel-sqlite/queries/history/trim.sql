-- Keeps about the newest :kept records (seq has gaps, so at most that many).
DELETE FROM history WHERE seq <= (SELECT max(seq) FROM history) - :kept
