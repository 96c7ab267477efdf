"""Kafka pipelines: user code applied to event streams, exactly once, inside the coordinator."""
