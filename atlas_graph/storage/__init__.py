"""Persistence: the checkpointer and store a run uses, and what lives in the store.

``persistence`` opens savers and stores (memory, SQLite, PostgreSQL); ``ledger`` keeps one
record per session, ``history`` the per-fingerprint lane and reward history, and
``review_cache`` the teacher's reusable plan reviews.
"""
