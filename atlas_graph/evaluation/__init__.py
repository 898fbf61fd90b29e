"""Evaluation harnesses: run task files as batches and summarise what supervision did."""
