"""Every workflow a worker runs. Apart from the package's __init__, so that importing one
workflow brings only its own modules: the replay tests' sandbox imports a workflow's
package afresh for each workflow it replays."""

from magsag.workflows.plan import PlanWorkflow
from magsag.workflows.task import TaskWorkflow

ALL_WORKFLOWS = [PlanWorkflow, TaskWorkflow]
