"""The plan: what users write (PlanFile) and the normalized DAG every part runs (Plan).

Both plan forms, `tasks:` (a DAG) and `phases:`, compile to one Plan whose tasks list
every dependency explicitly, in plan order. Loading and checking the file is in
contracts/plan_loader.py; this module only defines the shapes.
"""

from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    field_serializer,
    field_validator,
)

from magsag.contracts import packed_tasks
from magsag.contracts.constants import DEFAULT_RETRIES, DEFAULT_TASK_TIMEOUT
from magsag.contracts.delivery import Deliver, NotifyTarget
from magsag.contracts.durations import parse_duration

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

Seconds = Annotated[float, BeforeValidator(parse_duration)]
# What a retry after failed checks does: a fresh attempt from the task's base commit, or
# the agent's own session continued in the kept worktree, with the checks' feedback.
Retry = Literal["fresh", "continue"]
"""A duration written as "90s", "10m", "2h" or a number of seconds."""

# Keys some plan formats carry for people, not for the run; accepted and ignored so
# such files run unchanged, while a misspelt real key is still an error.
INFORMATIONAL_KEYS = ("id", "title", "description", "tags", "metadata", "notes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RunnerSpec(_Strict):
    """How to start one kind of agent. `env` names variables, never values (invariant 5)."""

    kind: Literal["command", "claude", "codex", "gemini"] = "command"
    command: list[str] = Field(
        default_factory=list,
        description="command: argv run in the worktree without a shell, '{prompt}' replaced; "
        "claude/codex/gemini: optionally the CLI's path",
    )
    model: str | None = None
    args: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list, description="environment variable names")
    max_parallel: int | None = Field(default=None, ge=1)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="kind-specific settings (permission_mode, allowed_tools, sandbox, prices)",
    )


class OnConflict(_Strict):
    """A merge conflict handed to a resolver runner (`on_conflict:`, plan or task)."""

    runner: str
    prompt: str = Field(default="", description="the user's instructions to the resolver")
    retries: int = Field(default=0, ge=0, description="resolver attempts after the first")


MAX_CANDIDATES = 10


class JudgeSpec(_Strict):
    """How best-of-N picks among the candidates that passed: a shell command run with each
    candidate's worktree and diff in its environment, printing the winner's number; or a
    runner prompted with the task, the user's instructions and every candidate's diff."""

    command: str | None = None
    runner: str | None = None
    prompt: str = Field(default="", description="a runner judge's instructions: what is best")


class TaskSpec(_Strict):
    """One task as written in the file (AutomatosX names accepted as aliases)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    prompt: str | None = Field(default=None, validation_alias=AliasChoices("prompt", "task"))
    runner: str | None = Field(default=None, validation_alias=AliasChoices("runner", "agent"))
    depends_on: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("depends_on", "dependencies")
    )
    priority: int = 0
    timeout: Seconds | None = None
    retries: int | None = Field(default=None, ge=0)
    checks: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    critical: bool = True
    approval: bool = Field(default=False, description="wait for `magsag approve` before it starts")
    on_conflict: OnConflict | None = None
    retry: Retry | None = None
    candidates: int | list[str] | None = Field(
        default=None, description="best-of-N: N runs of the task's runner, or a runner each"
    )
    judge: str | JudgeSpec | None = Field(
        default=None, description="a command, {command} or {runner, prompt}"
    )


class PhaseSpec(_Strict):
    name: str
    parallel: bool = True
    approval: bool = Field(default=False, description="one approval before the phase starts")
    tasks: list[TaskSpec]


class Defaults(_Strict):
    runner: str | None = Field(default=None, validation_alias=AliasChoices("runner", "agent"))
    timeout: Seconds | None = None
    retries: int | None = Field(default=None, ge=0)
    retry: Retry | None = None


class Budget(_Strict):
    """When spent, no new task starts; running ones finish; the run ends budget_exceeded."""

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)


class PlanFile(_Strict):
    """The YAML document as written; either `tasks` or `phases`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str | None = None
    concurrency: int | None = None
    base: str | None = None
    runners: dict[str, RunnerSpec] = Field(default_factory=dict)
    provider_map: dict[str, str] = Field(
        default_factory=dict, description="agent category -> runner, e.g. backend: codex"
    )
    budget: Budget = Field(default_factory=Budget)
    defaults: Defaults = Field(default_factory=Defaults)
    on_conflict: OnConflict | None = None
    tasks: list[TaskSpec] | None = None
    phases: list[PhaseSpec] | None = None
    deliver: Deliver | None = None
    notify: list[NotifyTarget] = Field(default_factory=list)


class PlanTask(BaseModel):
    """A task of the normalized DAG: every default applied, every dependency explicit."""

    name: str
    prompt: str = ""
    runner: str
    category: str | None = Field(default=None, description="the agent category it asked for")
    depends_on: list[str] = Field(default_factory=list)
    priority: int = 0
    timeout_seconds: float = DEFAULT_TASK_TIMEOUT.total_seconds()
    retries: int = DEFAULT_RETRIES
    retry: Retry = Field(default="fresh", description="after failed checks: fresh or continue")
    candidates: list[str] = Field(
        default_factory=list, description="best-of-N: each candidate's runner (empty: one agent)"
    )
    judge: str | None = Field(default=None, description="best-of-N: the judge's shell command")
    judge_runner: str | None = Field(default=None, description="best-of-N: the judge's runner")
    judge_prompt: str = Field(default="", description="the runner judge's instructions")
    checks: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    critical: bool = True
    phase: str | None = None
    summary: str = Field(
        default="", description="the prompt's first line, shortened: what the Web UI shows"
    )
    gate: str | None = Field(
        default=None, description='approval it waits for: "phase:<name>" or "task:<name>"'
    )
    on_conflict: OnConflict | None = Field(
        default=None, description="its own, when it overrides the plan's"
    )


class Plan(BaseModel):
    """The normalized plan a run executes; tasks are in plan order."""

    name: str
    concurrency: int
    base: str | None = None
    runners: dict[str, RunnerSpec]
    budget: Budget = Field(default_factory=Budget)
    on_conflict: OnConflict | None = None
    tasks: list[PlanTask]
    deliver: Deliver | None = Field(default=None, description="what the run does on success")
    notify: list[NotifyTarget] = Field(default_factory=list)

    def dag(self) -> "Plan":
        """The plan without its prompts: what workflows carry when the whole plan is
        stored where the workers read it (activities/plan_store.py)."""
        return self.model_copy(
            update={"tasks": [t.model_copy(update={"prompt": ""}) for t in self.tasks]}
        )

    def without_summaries(self) -> "Plan":
        """The DAG a run hands over when it continues as new: summaries only label the
        Web UI's task workflows, and rows of every task's state travel beside it."""
        return self.model_copy(
            update={"tasks": [t.model_copy(update={"summary": ""}) for t in self.tasks]}
        )

    @field_serializer("tasks", mode="wrap")
    def _pack_on_the_wire(self, tasks: list[PlanTask], handler, info):
        if (info.context or {}).get(packed_tasks.WIRE):
            return packed_tasks.pack(tasks, _TASK_LIST)
        return handler(tasks)

    @field_validator("tasks", mode="before")
    @classmethod
    def _unpack(cls, value):
        return packed_tasks.unpack(value) if packed_tasks.is_packed(value) else value

    # The task list the index was built from, and the index: built once, plans are large.
    _index: tuple[list, dict[str, PlanTask]] | None = PrivateAttr(default=None)

    def on_conflict_of(self, name: str) -> OnConflict | None:
        """Who resolves the task's merge conflicts: its own setting, else the plan's."""
        return self.task(name).on_conflict or self.on_conflict

    def task(self, name: str) -> PlanTask:
        if self._index is None or self._index[0] is not self.tasks:
            self._index = (self.tasks, {t.name: t for t in self.tasks})
        return self._index[1][name]


_TASK_LIST = TypeAdapter(list[PlanTask])
