"""Pydantic models shared by the CLI, the workflows and the activities."""
