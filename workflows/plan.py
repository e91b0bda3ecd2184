"""PlanWorkflow (MAG): runs a plan's DAG as child TaskWorkflows and integrates them.

The loop reads like the plan: start what is ready, wait for any task to finish,
integrate what finished (one activity for all of them, serialized because the
workflow is single-threaded), repeat. A task starts from the integration tip of
the moment it starts, so it sees the merged work of everything it depends on.
"""

import asyncio
import functools

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from magsag.contracts import activity_stubs as activities
    from magsag.contracts import constants as C
    from magsag.contracts.activities import (
        PrepareIntegrationInput,
        RunEndRecord,
    )
    from magsag.contracts.run import (
        Gate,
        GateDecision,
        GateStatus,
        RunInput,
        RunResult,
        RunStatus,
        TaskInput,
        TaskResult,
        TaskStatus,
        Usage,
    )
    from magsag.workflows import delivery, handover, integration, repo_steps, resolve, texts
    from magsag.workflows.gates import Gates, rejection
    from magsag.workflows.live_state import LiveState
    from magsag.workflows.notifier import Notifier
    from magsag.workflows.scheduler import Scheduler
    from magsag.workflows.task import TaskWorkflow

# Patch: the run's end is written to run.jsonl by an activity (before: no such step).
RUN_LOG_END = "run-log-end"
# Patch: the memo holds the run's header and a key per changed task (before: the whole
# state under one key at every change), search attributes and details come from counts,
# task workflows outlive the execution (ABANDON) and the run continues as new after
# continue_after started tasks (workflows/handover.py).
COMPACT_STATE = "compact-state"


@workflow.defn(name=C.PLAN_WORKFLOW)  # the CLI starts it by this name
class PlanWorkflow:
    def __init__(self) -> None:
        self._result: RunResult | None = None
        self._live: LiveState | None = None
        self._gates = Gates({})  # the run result's gates once the run starts
        self._decided = asyncio.Event()  # set by approve/reject updates
        self._budget_spent = False
        self._attempts = 0  # of the tasks this run ran (a resumed run's carried ones aside)
        self._integration: integration.Integration | None = None  # once the run starts
        self._compact = False  # COMPACT_STATE: see above
        self._started = 0  # tasks this execution started
        self._adopted: set[str] = set()  # tasks an earlier execution started
        self._starting: set[str] = set()  # tasks whose workflow the server has yet to start
        self._resolvers = resolve.Resolvers()  # conflicts handed to resolvers (on_conflict)
        self._notifier: Notifier | None = None  # once the run starts

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        branch = C.integration_branch(inp.run_id)
        self._compact = workflow.patched(COMPACT_STATE)
        self._result = RunResult.initial(inp, started_at=workflow.now())
        self._gates = Gates(self._result.gates)
        before = inp.handover
        self._live = LiveState(
            self._result,
            execution=before.execution if before else 0,
            compact=self._compact,
        )
        self._notifier = Notifier(inp, self._result, self._live)
        self._integration = integration.Integration(self._result, self._live, self._task)
        adopted = list(before.running.rows) if before else []
        known = {n: t.status for n, t in self._result.tasks.items() if n not in adopted}
        scheduler = Scheduler(inp.plan, inp.concurrency, known, self._gates, running=adopted)
        scheduler.take_changes()  # the result has these statuses already
        running: dict[str, asyncio.Task[TaskResult]] = {}
        if before is not None:  # continued as new: the integration branch exists
            self._attempts = before.attempts
            for name in adopted:
                self._adopted.add(name)
                self._live.changed(name)
                current = self._result.tasks[name]
                start = functools.partial(self._start_adopted, inp, name)
                running[name] = asyncio.create_task(handover.adopt(inp, name, current, start))
        else:
            failed = await self._prepare(inp, scheduler, branch)
            if failed:
                return self._result
        try:
            handing_over = await self._drive(inp, scheduler, running)
        except asyncio.CancelledError:
            await self._cancel_running(inp, running)
            self._settle(scheduler, RunStatus.CANCELLED, TaskStatus.CANCELLED)
            await self._record_end(inp)
            raise
        if handing_over:
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._notifier.drain()
            by_reference = workflow.patched(handover.DONE_BY_REFERENCE)
            this_run = workflow.info().run_id if by_reference else None
            workflow.continue_as_new(
                handover.next_input(inp, self._result, list(running), self._attempts, this_run),
                memo=self._live.fresh_memo(list(running)),
            )
        failed = self._result.error is not None or any(
            status in (TaskStatus.FAILED, TaskStatus.CONFLICTED) and inp.plan.task(name).critical
            for name, status in scheduler.status.items()
        )
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        if self._budget_spent and scheduler.has_unstarted():
            status = RunStatus.BUDGET_EXCEEDED
        self._settle(scheduler, status, TaskStatus.SKIPPED)
        if status == RunStatus.SUCCEEDED:
            self._result.pull_request = await delivery.pull_request(inp, self._final_result(inp))
        await self._record_end(inp)
        return self._final_result(inp)

    async def _prepare(self, inp: RunInput, scheduler: Scheduler, branch: str) -> bool:
        """Create the integration branch; on failure end the run (returns True)."""
        try:
            prepared = await repo_steps.run_step(
                activities.prepare_integration,
                PrepareIntegrationInput(
                    repo=inp.paths.repo,
                    base=inp.base_commit,
                    base_branch=inp.base,
                    branch=branch,
                    log_dir=inp.paths.log_dir,
                ),
                inp,
                repo_steps.LOCAL_PREPARE,
            )
        except ActivityError as err:
            if not workflow.patched(integration.RUN_ERROR):
                raise
            self._result.error = (
                f"could not create the integration branch {branch}: {texts.reason(err)}"
            )
            self._settle(scheduler, RunStatus.FAILED, TaskStatus.SKIPPED)
            await self._record_end(inp)
            return True
        self._result.integration_commit = prepared.tip
        return False

    async def _drive(self, inp: RunInput, scheduler: Scheduler, running: dict) -> bool:
        """Start what is ready, wait for a task or the integration in flight, repeat.

        A task's slot frees when its agent is done; it counts as succeeded for its
        dependents only once merged. Integration runs beside the tasks, one batch at a
        time, so independent tasks never wait for a merge. Returns True when the run
        should continue as new: it then starts nothing more and merges what finished.
        """
        merging: asyncio.Task[dict[str, TaskStatus]] | None = None
        to_merge: list[TaskResult] = []
        decision: asyncio.Task | None = None
        handing_over = False
        while True:
            for name in [] if handing_over else scheduler.next_to_start():
                running[name] = asyncio.create_task(self._run_task(inp, name))
                self._task(name).started_at = workflow.now()
                self._started += 1
            waiting = scheduler.waiting_gates()
            self._notifier.gates_waiting(self._gates.reached(waiting))
            if waiting and decision is None:
                decision = asyncio.create_task(self._decided.wait())
            elif not waiting and decision is not None:
                decision.cancel()
                decision = None
            self._sync_statuses(scheduler)
            self._live.publish()
            if handing_over and merging is None and not to_merge and not self._resolvers.running:
                if decision is not None:
                    decision.cancel()
                if workflow.patched(handover.HANDOVER_AFTER_STARTS):
                    await workflow.wait_condition(lambda: not self._starting)
                return True
            pending = [*running.values(), *self._resolvers.running.values()]
            pending += [f for f in (merging, decision) if f]
            if not pending:
                return False
            await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if decision is not None and decision.done():
                decision = None
                self._decided.clear()
                self._apply_decisions(scheduler)
            for name in [name for name, fut in running.items() if fut.done()]:
                result = running.pop(name).result()
                self._put(result)
                self._account(inp, scheduler, result)
                if result.status == TaskStatus.SUCCEEDED and result.commit:
                    scheduler.agent_done(name)
                    to_merge.append(result)
                else:
                    scheduler.finish(name, result.status)
            if merging and merging.done():
                for name, status in merging.result().items():
                    tip = self._result.integration_commit
                    if not self._resolvers.after_merge(inp, self._task(name), status, tip):
                        scheduler.finish(name, status)
                merging = None
            for name, resolution in self._resolvers.ended():
                resolved = self._resolvers.record(inp, self._task(name), resolution)
                self._spend(inp, scheduler, resolution.usage, resolution.attempts)
                if resolved is not None:
                    to_merge.append(resolved)
                else:
                    scheduler.finish(name, TaskStatus.CONFLICTED)
            if self._integration.error is not None:  # nothing more can merge: end the run
                for result in to_merge:
                    self._integration.not_merged(result.name)
                    scheduler.finish(result.name, TaskStatus.FAILED)
                if decision is not None:
                    decision.cancel()
                scheduler.stop()
                await self._cancel_running(inp, running)
                return False
            if merging is None and to_merge:
                merging = asyncio.create_task(self._integration.merge(inp, to_merge))
                to_merge = []
            handing_over = handing_over or self._time_to_hand_over(inp, scheduler)

    def _time_to_hand_over(self, inp: RunInput, scheduler: Scheduler) -> bool:
        """Whether this execution has run enough tasks to continue as new (while tasks
        remain to start: the last ones finish in the execution that started them)."""
        if not self._compact or scheduler.stopping or not scheduler.has_unstarted():
            return False
        return self._started >= inp.continue_after or workflow.info().is_continue_as_new_suggested()

    # ---- tasks

    async def _start_adopted(self, inp: RunInput, name: str) -> TaskResult:
        self._adopted.discard(name)  # a child of this execution now
        return await self._run_task(inp, name)

    async def _run_task(self, inp: RunInput, name: str) -> TaskResult:
        task = inp.plan.task(name)
        self._starting.add(name)
        try:
            child = await workflow.start_child_workflow(
                TaskWorkflow.run,
                TaskInput(
                    run_id=inp.run_id,
                    # Without its dependencies: this workflow waits for them, and a phase's
                    # tasks each depend on the whole phase before (thousands of names).
                    task=task.model_copy(update={"depends_on": []}),
                    runner=inp.plan.runners[task.runner],
                    runners={
                        r: inp.plan.runners[r]
                        for r in [*task.candidates, *filter(None, [task.judge_runner])]
                    },
                    base_commit=self._result.integration_commit,
                    paths=inp.paths,
                    host_queue=inp.host_queue,
                    plan_ref=inp.plan_ref,
                ),
                id=C.task_workflow_id(inp.run_id, name),
                task_queue=workflow.info().task_queue,
                # It outlives this execution when the run continues as new (handover.py).
                parent_close_policy=workflow.ParentClosePolicy.ABANDON
                if self._compact
                else workflow.ParentClosePolicy.REQUEST_CANCEL,
                cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                static_summary=f"{name}: {task.summary}" if task.summary else name,
                static_details=texts.task_details(inp, task),
            )
            self._starting.discard(name)
            return await child
        except ChildWorkflowError as err:
            return texts.failed_result(name, err, self._result.tasks[name])
        finally:
            self._starting.discard(name)

    def _account(self, inp: RunInput, scheduler: Scheduler, result: TaskResult) -> None:
        self._spend(inp, scheduler, result.usage, result.attempts)

    def _spend(self, inp: RunInput, scheduler: Scheduler, usage: Usage, attempts: int) -> None:
        """Add agents' usage to the run's; past the budget, nothing new starts."""
        self._result.usage = self._result.usage + usage
        self._attempts += attempts
        budget = inp.plan.budget
        over_cost = budget.max_cost_usd is not None and (
            self._result.usage.cost_usd >= budget.max_cost_usd
        )
        over_attempts = budget.max_attempts is not None and self._attempts >= budget.max_attempts
        if over_cost or over_attempts:
            self._budget_spent = True
            scheduler.stop()

    def _apply_decisions(self, scheduler: Scheduler) -> None:
        for gate in self._gates.apply_decisions():
            for task in scheduler.pending_behind(gate.id):
                scheduler.finish(task, TaskStatus.SKIPPED)
                self._task(task).error = rejection(gate)

    # ---- the run's end

    async def _cancel_running(self, inp: RunInput, running: dict) -> None:
        # Cancel the children explicitly and wait for their cleanup: cancelling the
        # parent alone leaves children terminated without removing their worktrees.
        # Resolvers too: each saves its partial work.
        await self._resolvers.cancel()
        for name, fut in running.items():
            if name in self._adopted:  # its await_task returns how it ended
                await handover.cancel_adopted(inp, name)
            else:
                fut.cancel()
        ended = await asyncio.gather(*running.values(), return_exceptions=True)
        for result in ended:
            if isinstance(result, TaskResult):  # its WIP commit and attempts
                self._put(result)

    def _settle(self, scheduler: Scheduler, status: RunStatus, leftover: TaskStatus) -> None:
        scheduler.finish_pending(leftover)
        scheduler.cancel_running()
        self._sync_statuses(scheduler)
        self._result.status = status
        self._result.finished_at = workflow.now()
        self._live.publish()

    async def _record_end(self, inp: RunInput) -> None:
        await self._notifier.run_finished()
        if workflow.patched(RUN_LOG_END):
            record = RunEndRecord(
                log_dir=inp.paths.log_dir,
                repo=inp.paths.repo,
                run_folder=inp.paths.run_folder(inp.run_id),
                result=self._final_result(inp),
                statuses={name: task.status.value for name, task in self._result.tasks.items()},
            )
            try:
                await repo_steps.run_step(
                    activities.record_run_end,
                    record,
                    inp,
                    repo_steps.LOCAL_RUN_END,
                    "record the run's end",
                )
            except ActivityError as err:  # the run's own record never holds up its end
                workflow.logger.warning("the run's end is not in run.jsonl: %s", texts.reason(err))

    # ---- what the run shows: memo, search attributes, current details

    def _sync_statuses(self, scheduler: Scheduler) -> None:
        changes = scheduler.take_changes()
        for name, status in changes.items():
            self._task(name).status = status
        self._notifier.tasks_changed(changes)

    def _task(self, name: str) -> TaskResult:
        """A task's result, to change: the next publish shows it."""
        self._live.changed(name)
        return self._result.tasks[name]

    def _put(self, result: TaskResult) -> None:
        self._live.changed(result.name)
        self._result.tasks[result.name] = result

    def _final_result(self, inp: RunInput) -> RunResult:
        """The run's result, without the tasks this execution's input holds packed
        (continued or resumed runs of thousands of tasks): Temporal refuses a result
        over 2 MB. history/status.py puts the two together."""
        packed = inp.ended_before()
        if not packed:
            return self._result
        tasks = {n: t for n, t in self._result.tasks.items() if n not in packed}
        return self._result.model_copy(update={"tasks": tasks})

    # ---- activities

    # ---- queries and updates: what the CLI asks of a running run

    @workflow.query
    def status(self) -> RunResult | None:
        return self._result

    @workflow.update
    async def approve(self, decision: GateDecision) -> Gate:
        """Let a waiting phase or task start (`magsag approve`)."""
        return self._decide(decision, GateStatus.APPROVED)

    @approve.validator
    def _validate_approve(self, decision: GateDecision) -> None:
        self._gates.waiting_gate(decision)

    @workflow.update
    async def reject(self, decision: GateDecision) -> Gate:
        """End a waiting phase or task as skipped, with the reason (`magsag reject`)."""
        return self._decide(decision, GateStatus.REJECTED)

    @reject.validator
    def _validate_reject(self, decision: GateDecision) -> None:
        self._gates.waiting_gate(decision)

    def _decide(self, decision: GateDecision, status: GateStatus) -> Gate:
        gate = self._gates.decide(decision, status, workflow.now())
        self._decided.set()
        return gate
