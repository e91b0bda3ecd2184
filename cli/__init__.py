"""The `magsag` command: typer app, thin commands (one module per group) and their helpers."""
