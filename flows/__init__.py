"""Orchestration: the Prefect flows, the dbt runner and the `journey` command line."""
