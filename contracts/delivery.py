"""Where a run's outcome goes once it ends: a pull request (`deliver:`) and
notifications (`notify:`), as the plan writes them and as the run reports them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PullRequestSpec(_Strict):
    """`deliver: {pull_request: {...}}`, `magsag run --pr` and `magsag pr`'s options."""

    base: str | None = Field(
        default=None, description="branch the pull request goes into (default: the run's base)"
    )
    draft: bool = False
    title: str | None = Field(default=None, description="default: magsag: <plan> (<run>)")


class Deliver(_Strict):
    pull_request: PullRequestSpec | None = None


class PullRequestOutcome(BaseModel):
    """What delivering the run did: the pull request opened or updated, or why not."""

    url: str | None = None
    number: int | None = None
    action: Literal["created", "updated"] | None = None
    remote: str | None = None
    branch: str | None = None
    pushed: bool = Field(default=False, description="the integration branch is on the remote")
    error: str | None = None


NOTIFY_EVENTS = ("approval_waiting", "task_failed", "conflict", "run_finished")
NotifyEvent = Literal["approval_waiting", "task_failed", "conflict", "run_finished"]


class NotifyTarget(_Strict):
    """One `notify:` entry: a URL to POST to or a command to run, for some events.

    A URL may name environment variables of the worker, `${SLACK_WEBHOOK}`: a webhook's
    URL is often its secret, and the plan travels in the run's history (invariant 5)."""

    url: str | None = None
    command: list[str] | None = None
    events: list[str] | None = Field(default=None, description=f"of {NOTIFY_EVENTS}; default all")

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events


class Notification(BaseModel):
    """The JSON document a target receives (stdin of a command, body of a POST)."""

    run_id: str
    plan: str
    event: NotifyEvent
    task: str | None = None
    gate: str | None = None
    status: str = Field(description="the task's status, the gate's, or the run's")
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="tasks by status")
    cost_usd: float = 0.0
    web_ui: str | None = None
    pull_request: str | None = Field(default=None, description="its URL (run_finished)")
    at: datetime
    text: str = Field(description="one line for people (chat webhooks show it)")
