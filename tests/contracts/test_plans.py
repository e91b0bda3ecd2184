"""Plan files compile to one normalized DAG; durations read as people write them."""

import time
from pathlib import Path

import pytest

from magsag.activities.runners import check_spec
from magsag.contracts.durations import format_duration, parse_duration
from magsag.contracts.plan_loader import MAX_TASKS, PlanError, load_plan, parse_plan
from tests.support.runs import migration_tasks

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
RUNNER = {"sh": {"command": ["bash", "-c", "{prompt}"]}}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_plan_is_valid(path):
    plan = load_plan(path)
    assert plan.tasks
    for runner in plan.runners.values():
        check_spec(runner)  # kind-specific options too


def test_phases_compile_to_dependencies_on_the_whole_previous_phase():
    plan = parse_plan(
        {
            "runners": RUNNER,
            "phases": [
                {"name": "p1", "tasks": [
                    {"name": "a", "prompt": "x"}, {"name": "b", "prompt": "x"},
                ]},
                {"name": "p2", "parallel": False, "tasks": [
                    {"name": "c", "prompt": "x"}, {"name": "d", "prompt": "x"},
                ]},
                {"name": "p3", "tasks": [{"name": "e", "prompt": "x"}]},
            ],
        }
    )  # fmt: skip
    deps = {t.name: t.depends_on for t in plan.tasks}
    assert deps == {"a": [], "b": [], "c": ["a", "b"], "d": ["a", "b", "c"], "e": ["c", "d"]}
    assert [t.phase for t in plan.tasks] == ["p1", "p1", "p2", "p2", "p3"]


def test_defaults_apply_and_task_values_win():
    plan = parse_plan(
        {
            "name": "n",
            "runners": {**RUNNER, "other": {"command": ["true"]}},
            "defaults": {"runner": "sh", "timeout": "2m", "retries": 2, "retry": "continue"},
            "tasks": [
                {"name": "a", "prompt": "x"},
                {"name": "b", "prompt": "x", "runner": "other", "timeout": 30, "retries": 0,
                 "retry": "fresh"},
            ],
        }
    )  # fmt: skip
    a, b = plan.tasks
    assert (a.runner, a.timeout_seconds, a.retries, a.retry) == ("sh", 120, 2, "continue")
    assert (b.runner, b.timeout_seconds, b.retries, b.retry) == ("other", 30, 0, "fresh")
    assert (
        parse_plan({"runners": RUNNER, "tasks": [{"name": "c", "prompt": "x"}]}).tasks[0].retry
        == "fresh"
    )


def test_automatosx_names_are_aliases():
    plan = parse_plan(
        {
            "runners": {"backend": RUNNER["sh"]},
            "tasks": [
                {"name": "a", "task": "do a", "agent": "backend"},
                {"name": "b", "task": "do b", "agent": "backend", "dependencies": ["a"],
                 "description": "kept for people, ignored by magsag"},
            ],
        }
    )  # fmt: skip
    assert [(t.prompt, t.runner, t.depends_on) for t in plan.tasks] == [
        ("do a", "backend", []),
        ("do b", "backend", ["a"]),
    ]


def test_a_plan_needs_tasks_or_phases_but_not_both():
    with pytest.raises(PlanError, match="either `tasks:` or `phases:`"):
        parse_plan({"runners": RUNNER, "tasks": [], "phases": []}, "p.yaml")


@pytest.mark.parametrize(
    "text,seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), (45, 45)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "0", "10x", ""])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_print_compactly():
    assert [format_duration(s) for s in (45, 90, 1800, 7200, 3900)] == [
        "45s", "1m30s", "30m", "2h", "1h05m"
    ]  # fmt: skip


def test_a_plan_larger_than_a_run_can_hold_is_rejected():
    many = [{"name": f"t{i}", "prompt": "x"} for i in range(MAX_TASKS + 1)]
    with pytest.raises(PlanError, match=f"{MAX_TASKS + 1} tasks; one run holds at most"):
        parse_plan({"runners": RUNNER, "tasks": many}, "p.yaml")
    huge = [{"name": "t", "prompt": "true", "checks": ["x" * 2_000_000]}]
    with pytest.raises(PlanError, match="prompts aside, take 195[0-9] KB and .* at most 1792 KB"):
        parse_plan({"runners": RUNNER, "tasks": huge}, "p.yaml")
    # Long names fit the first input but not the rows a resumed run carries.
    long_names = [{"name": f"{'n' * 80}-{i}", "prompt": "x"} for i in range(MAX_TASKS)]
    with pytest.raises(PlanError, match=r"take [0-9]{3} KB and 2[0-9]{3} KB once run"):
        parse_plan({"runners": RUNNER, "tasks": long_names}, "p.yaml")


def test_phases_that_would_make_millions_of_dependencies_are_refused_at_once():
    # Each task of a phase waits for every task of the phase before: 4,999 x 4,999.
    phases = [
        {"name": name, "tasks": [{"name": f"{name}-{i}", "prompt": "x"} for i in range(4999)]}
        for name in ("one", "two")
    ]
    started = time.monotonic()
    with pytest.raises(
        PlanError,
        match=r"24,990,001 dependencies between tasks; one run "
        r"holds at most 1,000,000; each of the 4,999 tasks of phase 'two' "
        r"waits for all 4,999 tasks of phase 'one' \(put a phase of one task",
    ):
        parse_plan({"runners": RUNNER, "phases": phases}, "p.yaml")  # fmt: skip
    assert time.monotonic() - started < 1  # counted, not built
    # The way out the message gives: a phase of one task between them.
    barrier = {"name": "barrier", "tasks": [{"name": "one-done", "prompt": "true"}]}
    plan = parse_plan({"runners": RUNNER, "phases": [phases[0], barrier, phases[1]]}, "p.yaml")
    assert plan.task("two-0").depends_on == ["one-done"]


def test_the_largest_plans_of_a_migration_fit_and_prompts_do_not_count():
    tasks = migration_tasks(MAX_TASKS)
    assert len(parse_plan({"runners": RUNNER, "tasks": tasks}, "p.yaml").tasks) == MAX_TASKS
    # Prompts are stored apart from the run's workflows: they do not count.
    long_prompts = [{"name": f"t{i}", "prompt": "x" * 100_000} for i in range(200)]
    assert len(parse_plan({"runners": RUNNER, "tasks": long_prompts}, "p.yaml").tasks) == 200


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"notify": [{"url": "http://x", "events": ["done"]}]},
         "test.yaml: notify target #1: unknown event 'done' (events: approval_waiting, "
         "task_failed, conflict, run_finished)"),
        ({"notify": [{"events": ["conflict"]}]},
         "test.yaml: notify target #1: give either `url:` or `command:` (exactly one of them)"),
        ({"notify": [{"command": ["true"]}, {"url": "http://x", "command": ["true"]}]},
         "test.yaml: notify target #2: give either `url:` or `command:` (exactly one of them)"),
        ({"notify": [{"url": "example.com/x"}]},
         "test.yaml: notify target #1: url 'example.com/x' is not an http:// or https:// URL"),
        ({"notify": [{"command": []}]}, "test.yaml: notify target #1: `command:` is an empty argv"),
        ({"notify": [{"url": "http://x", "method": "PUT"}]},
         "test.yaml: notify target #1: unknown key 'method'"),
        ({"deliver": {"pull_request": {"reviewers": ["me"]}}},
         "test.yaml: deliver: unknown key 'reviewers'"),
    ],
)  # fmt: skip
def test_bad_notify_and_deliver_keys_are_one_line_errors(extra, message):
    data = {"runners": RUNNER, "tasks": [{"name": "a", "prompt": "x"}], **extra}
    with pytest.raises(PlanError) as refused:
        parse_plan(data, "test.yaml")
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_notify_and_deliver_keys_compile_into_the_plan():
    plan = parse_plan(
        {
            "runners": RUNNER,
            "tasks": [{"name": "a", "prompt": "x"}],
            "notify": [{"url": "${HOOK}"}, {"command": ["cat"], "events": ["run_finished"]}],
            "deliver": {"pull_request": {"draft": True}},
        }
    )
    assert plan.notify[0].wants("conflict") and not plan.notify[1].wants("conflict")
    assert plan.deliver.pull_request.draft and plan.deliver.pull_request.base is None
