"""Finding a run the commands name: its workflow, the input it started with, its state."""

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from magsag.cli.activity_files import mark_stale
from magsag.cli.console import fail
from magsag.cli.runtime import connect_or_exit
from magsag.contracts import constants as C
from magsag.contracts.run import RunInput, RunResult
from magsag.history.status import execution_input, run_status


async def described(client: Client, run_id: str) -> WorkflowExecutionDescription | None:
    """The run's workflow as the server describes it; None when it has no such run (any
    more: retention, another server)."""
    try:
        return await client.get_workflow_handle(C.plan_workflow_id(run_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def existing_run(client: Client, run_id: str) -> WorkflowHandle:
    """The run's workflow handle; exits 2 for a run id the server does not know."""
    return (await existing_run_on_queue(client, run_id))[0]


async def existing_run_on_queue(client: Client, run_id: str) -> tuple[WorkflowHandle, str]:
    """existing_run, and the queue of the run's workflow: its host's, the any-host one (a
    run on a URL), or the shared one (a run an earlier version started)."""
    description = await described(client, run_id)
    if description is None:
        raise fail(f"unknown run id {run_id}")
    handle = client.get_workflow_handle(C.plan_workflow_id(run_id), result_type=RunResult)
    return handle, description.task_queue


async def run_input_of(handle: WorkflowHandle) -> RunInput:
    """The input of the run's current execution: its plan, paths and where it stands."""
    try:
        return await execution_input(handle)
    except LookupError as err:
        raise fail(str(err)) from None


async def read_status(handle: WorkflowHandle) -> tuple[RunResult, bool]:
    """The run's state and whether it has ended (needs no worker), with the running
    tasks whose agent has gone quiet marked stale."""
    result, closed = await run_status(handle)
    return mark_stale(result), closed


async def ended_run(run_id: str, if_running: str) -> tuple[Client, RunResult, RunInput]:
    """A run that ended: its state and its input; exits 2 for a run the server does not
    know, or one still running (if_running: what to do about it)."""
    client = await connect_or_exit(start_embedded=False)
    handle = await existing_run(client, run_id)
    result, closed = await read_status(handle)
    if not closed:
        raise fail(f"run {run_id} is still running; {if_running}")
    return client, result, await run_input_of(handle)
