"""Stands for the agent's own package in test_compat: its monitoring modules are now
one-line re-exports of speedmon_client's, and the rest of its code is unchanged."""
