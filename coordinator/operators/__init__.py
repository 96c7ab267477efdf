"""Operators' tools over pipelines: replays of a Kafka range, backfills, reconciliation."""
