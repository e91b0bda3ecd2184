"""Deterministic workflow code only: the plan workflow (MAG) and the task workflow (SAG)."""

from magsag.workflows.plan import PlanWorkflow
from magsag.workflows.task import TaskWorkflow

ALL_WORKFLOWS = [PlanWorkflow, TaskWorkflow]
