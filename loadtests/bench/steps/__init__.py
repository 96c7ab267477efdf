"""Participant-step alternatives on Redis, Hazelcast and Ignite: python -m loadtests.bench.steps."""
