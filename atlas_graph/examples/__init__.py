"""Example agents and tools that the configs in ``configs/examples`` point at."""
