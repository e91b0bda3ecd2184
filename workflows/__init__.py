"""Deterministic workflow code only: the plan workflow (MAG) and the task workflow (SAG).
workflows/registry.py lists them for the worker."""
