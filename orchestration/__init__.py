"""Dagster orchestration: assembles assets, jobs, schedules and the dbt translator."""
