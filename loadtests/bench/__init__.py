"""The benchmark suite: Shoal's figures side by side with baselines measured in the same run."""
