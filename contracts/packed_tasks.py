"""A plan's tasks as they travel through Temporal: each task as what differs from the one
before it.

A migration's thousands of tasks differ by name and little else once their prompts are
stored apart (the same runner, checks and outputs; in a phased plan the same long list
of dependencies), so a run's input and each hand-over carry the DAG in a few bytes a
task: `{"packed": [{first task}, "t2", "t3", {"name": "t4", "runner": "codex"}, ...]}`,
where a string is a task that differs from the one before by its name only, and a dict
spells out the fields that differ (a field back to its default included). Plans
written before read as they were: a plain list of tasks.
"""

from typing import Any

from pydantic import TypeAdapter

# Set in the serialization context by contracts/wire.py: only payloads are packed, never
# what users read (`--json`) or the stored plan.
WIRE = "wire"
PACKED = "packed"


def pack(tasks: list, adapter: TypeAdapter) -> dict:
    """adapter: list[PlanTask]'s (this module cannot import the model it serves)."""
    full = adapter.dump_python(tasks, mode="json")
    if not full:
        return {PACKED: []}
    first = adapter.dump_python(tasks[:1], mode="json", exclude_defaults=True)[0]
    packed: list[Any] = [first]
    for previous, task in zip(full, full[1:], strict=False):
        changed = {key: value for key, value in task.items() if previous.get(key) != value}
        packed.append(task["name"] if changed.keys() == {"name"} else changed)
    return {PACKED: packed}


def is_packed(value: Any) -> bool:
    return isinstance(value, dict) and PACKED in value


def unpack(value: dict) -> list[dict]:
    """The tasks' fields, each task's as a dict (the model validates them)."""
    tasks: list[dict] = []
    for entry in value[PACKED]:
        changed = {"name": entry} if isinstance(entry, str) else entry
        tasks.append(tasks[-1] | changed if tasks else changed)
    return tasks
