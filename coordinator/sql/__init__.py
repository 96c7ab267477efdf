"""SQL over the grid: maps are tables, queries read one snapshot, DML runs as transactions."""
