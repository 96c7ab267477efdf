"""Procedures of the benchmark and the load tests (`--procedures loadtests/procedures`)."""
