"""Fault tests: storage failures, races and outages, each bounded in time."""
