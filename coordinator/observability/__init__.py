"""Metrics families, spans and their wiring at the coordinator's edges (RPC, commits, SQL, disk)."""
