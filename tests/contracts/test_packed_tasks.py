"""A plan's tasks travel packed (each as what differs from the task before): every
field reads back as it was, plans recorded before read as they were, and a migration's
DAG takes a few bytes a task, while what users read stays a plain list."""

import json

from magsag.contracts.plan import Plan
from magsag.contracts.plan_loader import MAX_TASKS, parse_plan
from magsag.contracts.wire import data_converter, size_on_the_wire
from tests.support.runs import migration_tasks

RUNNERS = {"sh": {"command": ["bash", "-c", "{prompt}"]}, "other": {"command": ["true"]}}
DEFAULTS = {"runner": "sh"}


def _through_temporal(plan: Plan) -> tuple[Plan, dict]:
    [payload] = data_converter.payload_converter.to_payloads([plan])
    [back] = data_converter.payload_converter.from_payloads([payload], [Plan])
    return back, json.loads(payload.data)


def test_every_field_of_every_task_reads_back_from_its_packed_form():
    plan = parse_plan(
        {
            "runners": RUNNERS,
            "defaults": DEFAULTS,
            "phases": [
                {"name": "one", "tasks": [{"name": f"a{i}", "prompt": "x"} for i in range(3)]},
                {"name": "two", "parallel": False, "tasks": [
                    {"name": "b0", "prompt": "y", "runner": "other", "checks": ["make"],
                     "retries": 4, "critical": False, "approval": True},
                    {"name": "b1", "prompt": "y"},  # back to every default but the phase
                    {"name": "b2", "prompt": "z", "outputs": ["out.txt"], "priority": 3},
                ]},
            ],
        },
        "p.yaml",
    ).dag()  # fmt: skip
    back, wire = _through_temporal(plan)
    assert back.model_dump() == plan.model_dump()
    packed = wire["tasks"]["packed"]
    assert packed[1:3] == ["a1", "a2"]  # the same as the task before but the name
    assert packed[4]["retries"] == plan.tasks[4].retries  # a field back to its default
    assert "runner" not in packed[5] and packed[5]["outputs"] == ["out.txt"]


def test_plans_recorded_as_a_list_of_tasks_read_as_before():
    plan = parse_plan(
        {"runners": RUNNERS, "defaults": DEFAULTS, "tasks": migration_tasks(3)}, "p.yaml"
    )
    listed = plan.model_dump(mode="json")
    assert isinstance(listed["tasks"], list)  # users' JSON and the stored plan: a list
    assert Plan.model_validate(listed).model_dump() == plan.model_dump()


def test_the_largest_migration_takes_a_few_bytes_a_task_on_the_wire():
    tasks = migration_tasks(MAX_TASKS)
    plan = parse_plan({"runners": RUNNERS, "defaults": DEFAULTS, "tasks": tasks}, "p.yaml")
    handed = plan.dag().without_summaries()
    assert size_on_the_wire(handed) < 30 * MAX_TASKS  # a name and its quotes, about
    back, _ = _through_temporal(handed)
    assert [t.name for t in back.tasks] == [t.name for t in plan.tasks]
