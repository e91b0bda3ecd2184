"""Reading a run back without a worker: event histories, run files, describe, critical paths."""
