"""The Apache Ignite backend: partitions, commit sequence and catalog in Ignite 2.x caches."""
