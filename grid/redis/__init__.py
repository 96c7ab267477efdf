"""The Redis backend: every partition's records in Redis, every participant step one Lua script."""
