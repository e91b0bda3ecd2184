"""Every workflow a worker runs. Apart from the package's __init__: the sandbox imports a
workflow's package afresh for each workflow it starts, and a task's should not bring the
plan workflow's modules along."""

from magsag.workflows.plan import PlanWorkflow
from magsag.workflows.task import TaskWorkflow

ALL_WORKFLOWS = [PlanWorkflow, TaskWorkflow]
