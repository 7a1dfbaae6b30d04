SELECT value FROM fenced WHERE key = $1
