SELECT value FROM fenced WHERE key = :key;
