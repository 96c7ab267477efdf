"""The Hazelcast backend: partitions, commit sequence and catalog in a Hazelcast 5 cluster."""
