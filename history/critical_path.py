"""The two critical paths of magsag, named apart.

worst_case_path: before a run, from the plan alone (`plan show`): the dependency chain
whose task timeouts add up to the most, the longest a run could take.
measured_path: after (or during) a run, from its history (`runs describe`): the chain
whose finish times set the run's end, and where its time went.
"""

from datetime import datetime

from magsag.contracts.durations import seconds_between
from magsag.contracts.plan import Plan
from magsag.contracts.run import TaskStatus
from magsag.history.views import CriticalPath, PathStep, TaskView


def worst_case_path(plan: Plan) -> tuple[list[str], float]:
    """The dependency chain with the largest sum of task timeouts, and that sum."""
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(name: str) -> tuple[float, list[str]]:
        if name not in best:
            task = plan.task(name)
            chains = [longest(dep) for dep in task.depends_on]
            cost, chain = max(chains, default=(0.0, []), key=lambda c: c[0])
            best[name] = (cost + task.timeout_seconds, [*chain, name])
        return best[name]

    cost, chain = max((longest(t.name) for t in plan.tasks), key=lambda c: c[0])
    return chain, cost


def measured_path(tasks: dict[str, TaskView], start: datetime, end: datetime) -> CriticalPath:
    """Walk back from the task that finished last, through the dependency merged last.

    A task still running or merging counts as ending now, so a running run's path so far
    ends in what it is doing."""
    timed = {
        name: task
        for name, task in tasks.items()
        if task.ready_at and (task.started_at or task.status == TaskStatus.PENDING)
    }
    if not timed or start is None:
        return CriticalPath()
    done = {name: task.done_at or end for name, task in timed.items()}
    chain = [max(timed, key=done.get)]
    while deps := [d for d in timed[chain[-1]].depends_on if d in timed]:
        chain.append(max(deps, key=done.get))
    chain.reverse()
    steps = [_step(timed[name], end) for name in chain]
    time = {
        "setup": seconds_between(start, steps[0].ready_at),
        "waiting": sum(s.waiting_seconds for s in steps),
        "agents": sum(s.agent_seconds for s in steps),
        "retry_waits": sum(s.retry_wait_seconds for s in steps),
        "orchestration": sum(s.overhead_seconds for s in steps),
        "merging": sum(s.merging_seconds for s in steps),
        "finishing": seconds_between(steps[-1].done_at, end),
    }
    return CriticalPath(
        tasks=chain,
        steps=steps,
        seconds=seconds_between(start, end),
        time={k: round(max(v, 0.0), 3) for k, v in time.items()},
    )


def _step(view: TaskView, end: datetime) -> PathStep:
    started = view.started_at or end  # a ready task still waiting to start
    finished = view.finished_at or end
    running = seconds_between(started, finished)
    agent = sum(seconds_between(a.started_at, a.finished_at or end) or 0.0 for a in view.attempts)
    waits = sum(seconds_between(w.started_at, w.ended_at or end) for w in view.waits)
    return PathStep(
        task=view.name,
        status=view.status,
        in_progress=view.done_at is None,
        ready_at=view.ready_at,
        started_at=started,
        finished_at=finished,
        done_at=view.done_at or end,
        waiting_seconds=max(seconds_between(view.ready_at, started), 0.0),
        running_seconds=running,
        agent_seconds=round(agent, 3),
        retry_wait_seconds=round(waits, 3),
        overhead_seconds=round(max(running - agent - waits, 0.0), 3),
        merging_seconds=seconds_between(finished, view.done_at or end),
    )
