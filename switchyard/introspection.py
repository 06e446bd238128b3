"""Production mode's introspection rule: the schema is described only to callers allowed to see it.

    [server]
    mode = "production"
    introspection_scope = "introspection"   # callers holding it may introspect

An operation selecting ``__schema`` or ``__type`` from a caller without the
scope is refused before execution with ``FORBIDDEN`` (HTTP 403);
``__typename`` stays allowed, clients need it.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from switchyard.errors import Forbidden

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


def introspects(operation: OperationDefinitionNode) -> bool:
    """Whether the operation's root selects the schema's description."""
    return any(
        isinstance(selection, FieldNode) and selection.name.value in INTROSPECTION_FIELDS
        for selection in operation.selection_set.selections
    )


class IntrospectionPolicy(SchemaExtension):
    def __init__(self, scope: str) -> None:
        self.scope = scope

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        caller = getattr(context.context, "caller", None)
        allowed = caller is not None and self.scope in caller.scopes
        if document is not None and not context.result and not allowed:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if any(introspects(operation) for operation in operations):
                refusal = Forbidden("Introspection is disabled for this caller.")
                context.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
                )
        yield
