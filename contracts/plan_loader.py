"""Read a plan file, check it, and compile it into the normalized DAG.

Every problem becomes one PlanError whose message is a single line naming the file,
the task and what is wrong, so the CLI can print it and exit 2 before anything exists.
"""

import graphlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from magsag.contracts.constants import (
    CANDIDATE_INFIX,
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRIES,
    DEFAULT_TASK_TIMEOUT,
    MAX_CONCURRENCY,
    resolve_name,
)
from magsag.contracts.delivery import NOTIFY_EVENTS, NotifyTarget
from magsag.contracts.plan import (
    INFORMATIONAL_KEYS,
    MAX_CANDIDATES,
    NAME_PATTERN,
    JudgeSpec,
    Plan,
    PlanFile,
    PlanTask,
    TaskSpec,
)
from magsag.contracts.wire import size_on_the_wire

# Prompts are stored apart from the workflows (activities/plan_store.py), so the file
# may be large; libyaml reads 20 MB in about half a second, pure Python in 20 s.
MAX_PLAN_BYTES = 64 * 1024 * 1024
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# What one run's workflow can hold: its input carries the plan's DAG, prompts aside
# (packed: contracts/packed_tasks.py), and a run resumed from it the DAG without
# summaries plus a row per task it keeps (contracts/task_rows.py), in one payload
# Temporal refuses over 2 MB.
MAX_TASKS = 10_000
MAX_NORMALIZED_BYTES = 1792 * 1024
MAX_CARRIED_BYTES = 1792 * 1024
MAX_DEPENDENCIES = 1_000_000  # loaded in under a second, scheduled in about 0.3 s
ROW_BYTES = 100  # a finished task's row with its host, its name aside (a failure's text: longer)


class PlanError(ValueError):
    """A plan that cannot run; str() is the one line to show the user."""


def load_plan(path: str | Path, provider_map: dict[str, str] | None = None) -> Plan:
    source = Path(path)
    if not source.is_file():
        raise PlanError(f"{source}: plan file not found")
    if source.stat().st_size > MAX_PLAN_BYTES:
        raise PlanError(f"{source}: plan file is larger than {MAX_PLAN_BYTES} bytes")
    try:
        data = yaml.load(source.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise PlanError(f"{source}: not valid YAML: {_first_line(err)}") from None
    return parse_plan(data, str(source), provider_map)


def parse_plan(data: Any, source: str = "plan", provider_map: dict[str, str] | None = None) -> Plan:
    """provider_map (from --provider-map) overrides the plan's own `provider_map:`."""
    if not isinstance(data, dict):
        raise PlanError(f"{source}: a plan is a YAML mapping with `tasks:` or `phases:`")
    try:
        raw = PlanFile.model_validate(data)
    except ValidationError as err:
        raise PlanError(f"{source}: {_describe(err, data)}") from None
    raw.provider_map.update(provider_map or {})
    return _compile(raw, source, default_name=Path(source).stem)


def _compile(raw: PlanFile, source: str, default_name: str) -> Plan:
    def fail(message: str) -> PlanError:
        return PlanError(f"{source}: {message}")

    _reject_unknown_keys(raw.model_extra, "plan", fail)
    if (raw.tasks is None) == (raw.phases is None):
        raise fail("a plan has either `tasks:` or `phases:` (exactly one of them)")
    for category, runner in raw.provider_map.items():
        if runner not in raw.runners:
            known = ", ".join(sorted(raw.runners)) or "none defined"
            raise fail(f"provider map: {category}={runner}: unknown runner (runners: {known})")
    concurrency = raw.concurrency if raw.concurrency is not None else DEFAULT_CONCURRENCY
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise fail(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")

    _check_dependency_count(raw, fail)
    specs = _flatten(raw)
    if not specs:
        raise fail("the plan has no tasks")
    names = [spec.name for spec, _ in specs]
    seen: set[str] = set()
    for name in names:
        if not re.match(NAME_PATTERN, name):
            raise fail(f"task '{name}': name must match {NAME_PATTERN} (it names a branch)")
        if CANDIDATE_INFIX in name:
            raise fail(f"task '{name}': '{CANDIDATE_INFIX}' is kept for best-of-N candidates")
        if name in seen:
            raise fail(f"task '{name}': duplicate task name")
        seen.add(name)

    tasks = [_resolve_task(spec, deps, phase, raw, fail) for spec, (deps, phase) in specs]
    _check_acyclic(tasks, fail)
    plan = Plan(
        name=raw.name or default_name,
        concurrency=concurrency,
        base=raw.base,
        runners=raw.runners,
        budget=raw.budget,
        on_conflict=raw.on_conflict,
        tasks=tasks,
        deliver=raw.deliver,
        notify=raw.notify,
    )
    _check_resolvers(plan, seen, fail)
    for number, target in enumerate(raw.notify, 1):
        _check_notify_target(target, f"notify target #{number}", fail)
    _check_size(plan, fail)
    return plan


def _check_dependency_count(raw: PlanFile, fail) -> None:
    """Each task of a phase waits for every task of the phase before: two phases of
    5,000 tasks make 25 million dependencies, which take seconds to load and to schedule
    (more than a workflow task may take). Counted before they are made."""
    count = sum(len(spec.depends_on) for spec in raw.tasks or [])
    phases = raw.phases or []
    for before, phase in zip(phases, phases[1:], strict=False):
        count += len(before.tasks) * len(phase.tasks)
    for phase in phases:
        count += sum(len(spec.depends_on) for spec in phase.tasks)
        count += 0 if phase.parallel else len(phase.tasks) - 1
    if count > MAX_DEPENDENCIES:
        biggest = max(zip(phases, phases[1:], strict=False), default=None,
                      key=lambda pair: len(pair[0].tasks) * len(pair[1].tasks))  # fmt: skip
        where = (
            f"; each of the {len(biggest[1].tasks):,} tasks of phase '{biggest[1].name}' "
            f"waits for all {len(biggest[0].tasks):,} tasks of phase '{biggest[0].name}' "
            "(put a phase of one task between them: every task then waits for that one)"
            if biggest
            else ""
        )
        raise fail(
            f"{count:,} dependencies between tasks; one run holds at most "
            f"{MAX_DEPENDENCIES:,}{where}"
        )


def _check_resolvers(plan: Plan, names: set[str], fail) -> None:
    """Each `on_conflict:` names a runner, and its resolve branch (<task>--resolve, beside
    the task's) is no other task's."""
    for task in plan.tasks:
        resolver = plan.on_conflict_of(task.name)
        if resolver is None:
            continue
        where = f"task '{task.name}': on_conflict" if task.on_conflict else "on_conflict"
        if resolver.runner not in plan.runners:
            known = ", ".join(sorted(plan.runners)) or "none defined"
            raise fail(f"{where}: unknown runner '{resolver.runner}' (runners: {known})")
        if resolve_name(task.name) in names:
            raise fail(
                f"task '{resolve_name(task.name)}': the name is taken by the conflict "
                f"resolution of task '{task.name}' (rename it)"
            )


def _check_size(plan: Plan, fail) -> None:
    """Prompts do not count: a run stores them apart and workflows carry the DAG only."""
    if len(plan.tasks) > MAX_TASKS:
        raise fail(f"{len(plan.tasks)} tasks; one run holds at most {MAX_TASKS} (split the plan)")
    dag = plan.dag()
    size = size_on_the_wire(dag)
    carried = size_on_the_wire(dag.without_summaries()) + sum(
        len(t.name) + ROW_BYTES for t in plan.tasks
    )
    if size > MAX_NORMALIZED_BYTES or carried > MAX_CARRIED_BYTES:
        raise fail(
            f"the plan's tasks, prompts aside, take {size // 1024} KB and "
            f"{carried // 1024} KB once run; one run holds at most "
            f"{MAX_NORMALIZED_BYTES // 1024} KB and {MAX_CARRIED_BYTES // 1024} KB "
            "(shorten task names, checks and outputs, or split the plan)"
        )


SUMMARY_CHARS = 120


def summary_of(prompt: str) -> str:
    """The prompt's first non-empty line, shortened."""
    line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    return line if len(line) <= SUMMARY_CHARS else line[: SUMMARY_CHARS - 1] + "…"


def _flatten(raw: PlanFile) -> list[tuple[TaskSpec, tuple[list[str], object]]]:
    """Pair each task with the dependencies its place in the plan implies (and its phase)."""
    if raw.tasks is not None:
        return [(spec, ([], None)) for spec in raw.tasks]
    flat: list[tuple[TaskSpec, tuple[list[str], object]]] = []
    previous_phase: list[str] = []
    for phase in raw.phases or []:
        current: list[str] = []
        for spec in phase.tasks:
            # Each task waits for the whole previous phase; a sequential phase also
            # chains its own tasks.
            implied = list(previous_phase)
            if not phase.parallel and current:
                implied.append(current[-1])
            flat.append((spec, (implied, phase)))
            current.append(spec.name)
        previous_phase = current
    return flat


def _resolve_task(spec: TaskSpec, implied: list[str], phase, raw: PlanFile, fail) -> PlanTask:
    where = f"task '{spec.name}'"
    _reject_unknown_keys(spec.model_extra, where, fail)
    if not spec.prompt or not spec.prompt.strip():
        raise fail(f"{where}: missing prompt (`prompt:` or `task:`)")
    category = spec.runner or raw.defaults.runner
    if category is None and isinstance(spec.candidates, list) and spec.candidates:
        category = spec.candidates[0]  # listed candidates name the runners themselves
    # A task names a runner, or an agent category the provider map turns into one.
    runner = raw.provider_map.get(category, category) if category else None
    if runner is None and len(raw.runners) == 1:
        runner = next(iter(raw.runners))
    if runner is None:
        raise fail(f"{where}: no runner (set `runner:` on the task or `defaults.runner`)")
    if runner not in raw.runners:
        known = ", ".join(sorted(raw.runners)) or "none defined"
        raise fail(f"{where}: unknown runner '{runner}' (runners: {known})")
    if raw.runners[runner].kind == "command" and not raw.runners[runner].command:
        raise fail(f"runner '{runner}': a command runner needs `command:` (an argv list)")
    timeout = spec.timeout or raw.defaults.timeout or DEFAULT_TASK_TIMEOUT.total_seconds()
    retries = spec.retries if spec.retries is not None else raw.defaults.retries
    depends_on = list(dict.fromkeys([*implied, *spec.depends_on]))
    if spec.name in depends_on:
        raise fail(f"{where}: depends on itself")
    candidates = _candidates(spec, runner, raw, where, fail)
    judge = _judge(spec, raw, where, fail)
    if spec.judge is not None and not candidates:
        raise fail(f"{where}: `judge:` picks among `candidates:`; the task has none")
    return PlanTask(
        name=spec.name,
        prompt=spec.prompt,
        summary=summary_of(spec.prompt),
        runner=runner,
        category=category if category != runner else None,
        depends_on=depends_on,
        priority=spec.priority,
        timeout_seconds=timeout,
        retries=retries if retries is not None else DEFAULT_RETRIES,
        retry=spec.retry or raw.defaults.retry or "fresh",
        candidates=candidates,
        judge=judge.command,
        judge_runner=judge.runner,
        judge_prompt=judge.prompt,
        checks=spec.checks,
        outputs=spec.outputs,
        critical=spec.critical,
        phase=phase.name if phase else None,
        gate=_gate(spec, phase),
        on_conflict=spec.on_conflict,
    )


def _check_notify_target(target: NotifyTarget, where: str, fail) -> None:
    if (target.url is None) == (target.command is None):
        raise fail(f"{where}: give either `url:` or `command:` (exactly one of them)")
    if target.url is not None and not re.match(r"^(https?://|\$\{?\w)", target.url):
        raise fail(f"{where}: url {target.url!r} is not an http:// or https:// URL")
    if target.command is not None and not target.command:
        raise fail(f"{where}: `command:` is an empty argv list")
    for event in target.events if target.events is not None else NOTIFY_EVENTS:
        if event not in NOTIFY_EVENTS:
            raise fail(f"{where}: unknown event '{event}' (events: {', '.join(NOTIFY_EVENTS)})")
    if target.events == []:
        raise fail(f"{where}: `events:` is empty (leave it out for every event)")


def _candidates(spec: TaskSpec, runner: str, raw: PlanFile, where: str, fail) -> list[str]:
    """Each best-of-N candidate's runner: N times the task's, or as listed."""
    wanted = spec.candidates
    if wanted is None:
        return []
    if isinstance(wanted, int):
        wanted = [runner] * wanted
    if not 2 <= len(wanted) <= MAX_CANDIDATES:
        raise fail(f"{where}: candidates: between 2 and {MAX_CANDIDATES}, got {len(wanted)}")
    runners = [raw.provider_map.get(name, name) for name in wanted]
    for name in runners:
        if name not in raw.runners:
            known = ", ".join(sorted(raw.runners))
            raise fail(f"{where}: candidates: unknown runner '{name}' (runners: {known})")
        cap = raw.runners[name].max_parallel
        if cap is not None and runners.count(name) > cap:
            raise fail(
                f"{where}: {runners.count(name)} candidates of runner '{name}', "
                f"whose max_parallel is {cap}: they run at once"
            )
    return runners


def _judge(spec: TaskSpec, raw: PlanFile, where: str, fail) -> JudgeSpec:
    """A judge command, or a judge runner the plan defines (none: both empty)."""
    judge = JudgeSpec(command=spec.judge) if isinstance(spec.judge, str) else spec.judge
    if judge is None:
        return JudgeSpec()
    if (judge.command is None) == (judge.runner is None):
        raise fail(f"{where}: judge: give either `command:` or `runner:` (exactly one of them)")
    if judge.prompt and judge.runner is None:
        raise fail(f"{where}: judge: `prompt:` is for a `runner:` judge")
    runner = raw.provider_map.get(judge.runner, judge.runner) if judge.runner else None
    if runner is not None and runner not in raw.runners:
        known = ", ".join(sorted(raw.runners))
        raise fail(f"{where}: judge: unknown runner '{runner}' (runners: {known})")
    return judge.model_copy(update={"runner": runner})


def _gate(spec: TaskSpec, phase) -> str | None:
    """A task's own approval comes first; a gated phase holds all its tasks."""
    if spec.approval:
        return f"task:{spec.name}"
    if phase is not None and phase.approval:
        return f"phase:{phase.name}"
    return None


def _check_acyclic(tasks: list[PlanTask], fail) -> None:
    known = {t.name for t in tasks}
    for task in tasks:
        for dep in task.depends_on:
            if dep not in known:
                raise fail(f"task '{task.name}': depends on unknown task '{dep}'")
    sorter = graphlib.TopologicalSorter({t.name: t.depends_on for t in tasks})
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        cycle = list(reversed(err.args[1]))
        raise fail(f"dependency cycle: {' -> '.join(cycle)}") from None


def _reject_unknown_keys(extra: dict | None, where: str, fail) -> None:
    unknown = sorted(set(extra or {}) - set(INFORMATIONAL_KEYS))
    if unknown:
        raise fail(f"{where}: unknown key '{unknown[0]}'")


def _describe(err: ValidationError, data: dict) -> str:
    """One line for the first validation error, naming the task when there is one."""
    first = err.errors()[0]
    loc = list(first["loc"])
    where = _locate(loc, data)
    field = ".".join(str(part) for part in loc if not isinstance(part, int))
    message = first["msg"].removeprefix("Value error, ")
    key = field.split(".")[-1] if field else "value"
    if "on_conflict" in loc[:-1]:  # a key of a nested mapping: say whose
        key = f"on_conflict.{loc[-1]}"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key '{key}'"
    if first["type"] == "missing":
        return f"{where}: missing `{key}`"
    return f"{where}: {key}: {message}"


def _locate(loc: list, data: dict) -> str:
    node: Any = data
    where = "plan"
    if len(loc) > 1 and loc[0] == "notify" and isinstance(loc[1], int):
        return f"notify target #{loc[1] + 1}"
    if loc and loc[0] == "deliver":
        return "deliver"
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(part, int):
            kind = "phase" if "tasks" in node and "prompt" not in node else "task"
            where = f"{kind} '{node['name']}'" if "name" in node else f"{kind} #{part + 1}"
        elif isinstance(part, str) and loc and loc[0] == "runners" and part != "runners":
            where = f"runner '{part}'"
            break
    return where


def _first_line(err: Exception) -> str:
    return " ".join(str(err).split())[:200]
