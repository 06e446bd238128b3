"""Executing operations: planned, level by level, with graphql-core's execution as the fallback.

    schema = strawberry.Schema(query=Query, execution_context_class=PlannedExecutor)

See ``switchyard.execution.plan`` for what a plan covers and
``switchyard.execution.executor`` for how it runs.
"""

from switchyard.execution.executor import ExecutionPath, PlannedExecutor
from switchyard.execution.plan import PlanCache, Unplannable

__all__ = ["ExecutionPath", "PlanCache", "PlannedExecutor", "Unplannable"]
