-- Whether the server's autovacuum is on ('on' or 'off').
SELECT current_setting('autovacuum')
