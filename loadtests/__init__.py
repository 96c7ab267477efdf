"""Load tests (Locust users and scenarios) and the benchmark suite of Shoal."""
