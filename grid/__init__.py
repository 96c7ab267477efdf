"""The partitioned store of Shoal."""
