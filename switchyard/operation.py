"""``OperationRunner``: one operation through the pipeline's operation units, from parse to
settle, with the semantics of Strawberry's ``Schema.execute`` and a fraction of its cost.

The units are Strawberry schema extensions (``switchyard.pipeline``); Strawberry runs
each hook of each unit through a context manager of its own and an exit stack per
stage, about a fifth of a small request's CPU. Here each hook is a generator stepped
directly: entered in the units' order, left in reverse, an error thrown into the ones
entered, as ``contextlib`` would. The hook kinds of each unit class are found once.

    runner = OperationRunner(schema)
    result = await runner.execute(query, variables, context, root, name, allowed, extensions)

A unit with a per-field ``resolve`` hook still gets it (graphql-core's middleware), which
sends the operation to the standard execution.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, parse
from graphql.execution.middleware import MiddlewareManager
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

HOOKS = ("on_operation", "on_parse", "on_validate", "on_execute")


class HookKind(Enum):
    GENERATOR = "generator"
    ASYNC_GENERATOR = "async generator"
    COROUTINE = "coroutine"
    FUNCTION = "function"


Hook = tuple[SchemaExtension, Callable[[SchemaExtension], Any], HookKind]
Entered = list[tuple[Any, bool]]
"""The hooks' generators entered so far, each with whether it is asynchronous."""

_hooks_by_class: dict[type[SchemaExtension], dict[str, tuple[Callable[..., Any], HookKind]]] = {}


def class_hooks(cls: type[SchemaExtension]) -> dict[str, tuple[Callable[..., Any], HookKind]]:
    """The hooks ``cls`` overrides and how each runs; found once per class.

    >>> class Named(SchemaExtension):
    ...     def on_parse(self):
    ...         yield
    >>> {name: kind.value for name, (_, kind) in class_hooks(Named).items()}
    {'on_parse': 'generator'}
    """
    found = _hooks_by_class.get(cls)
    if found is None:
        found = {}
        for name in HOOKS:
            function = getattr(cls, name)
            if function is getattr(SchemaExtension, name):
                continue
            if inspect.isgeneratorfunction(function):
                kind = HookKind.GENERATOR
            elif inspect.isasyncgenfunction(function):
                kind = HookKind.ASYNC_GENERATOR
            elif inspect.iscoroutinefunction(function):
                kind = HookKind.COROUTINE
            else:
                kind = HookKind.FUNCTION
            found[name] = (function, kind)
        _hooks_by_class[cls] = found
    return found


class OperationRunner:
    """Runs operations of ``schema`` through its extensions (the pipeline's units)."""

    def __init__(self, schema: strawberry.Schema) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.execute_function = schema._get_execute_function()
        self.execution_kwargs = execution_context_class_kwargs(schema.execution_context_class)

    async def execute(
        self,
        query: str | None,
        variables: dict[str, Any] | None,
        context: Any,
        root_value: Any,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType],
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """``Schema.execute``: the same result, errors and exceptions (``MissingQueryError``,
        ``CannotGetOperationTypeError``, ``InvalidOperationTypeError`` are raised)."""
        execution = ExecutionContext(
            query=query,
            schema=self.schema,
            allowed_operations=allowed_operation_types,
            context=context,
            root_value=root_value,
            variables=variables,
            provided_operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        extensions = self.schema.get_extensions()
        hooks: dict[str, list[Hook]] = {name: [] for name in HOOKS}
        per_field: list[SchemaExtension] = []
        for extension in extensions:
            extension.execution_context = execution
            for name, (function, kind) in class_hooks(type(extension)).items():
                hooks[name].append((extension, function, kind))
            if extension._implements_resolve():
                per_field.append(extension)
        try:
            result = await self._run(execution, hooks, per_field)
        except (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError):
            raise
        except Exception as error:
            refusal = (
                error
                if isinstance(error, GraphQLError)
                else GraphQLError(str(error), original_error=error)
            )
            result = GraphQLExecutionResult(data=None, errors=[refusal])
        if result.errors:
            execution.pre_execution_errors = result.errors
            self.schema._process_errors(result.errors, execution)
        answer = ExecutionResult(data=result.data, errors=result.errors)
        answer.extensions = await self._extension_results(extensions, execution)
        execution.result = answer
        return answer

    async def _run(
        self,
        execution: ExecutionContext,
        hooks: dict[str, list[Hook]],
        per_field: list[SchemaExtension],
    ) -> GraphQLExecutionResult | ExecutionResult:
        async with _Stage(hooks["on_operation"]):
            refusal = await self._prepare(execution, hooks)
            if refusal is not None:
                return refusal
            return await self._execute(execution, hooks, per_field)

    async def _prepare(
        self, execution: ExecutionContext, hooks: dict[str, list[Hook]]
    ) -> GraphQLExecutionResult | None:
        """Parse, check the operation's type, validate; the errors that stop it, if any."""
        if not execution.query and execution.graphql_document is None:
            raise MissingQueryError
        async with _Stage(hooks["on_parse"]):
            if execution.graphql_document is None:  # no unit parsed it: Strawberry's parse
                assert execution.query is not None
                try:
                    execution.graphql_document = parse(execution.query, **execution.parse_options)
                except GraphQLError as error:
                    execution.pre_execution_errors = [error]
        if execution.graphql_document is None:
            return GraphQLExecutionResult(data=None, errors=execution.pre_execution_errors)
        try:
            operation_type = execution.operation_type
        except RuntimeError as error:
            raise CannotGetOperationTypeError(execution.operation_name) from error
        if operation_type not in execution.allowed_operations:
            raise InvalidOperationTypeError(operation_type)
        async with _Stage(hooks["on_validate"]):
            if execution.validation_rules and execution.pre_execution_errors is None:
                execution.pre_execution_errors = validate_document(
                    self.graphql_schema, execution.graphql_document, execution.validation_rules
                )
        if execution.pre_execution_errors:
            return GraphQLExecutionResult(data=None, errors=execution.pre_execution_errors)
        return None

    async def _execute(
        self,
        execution: ExecutionContext,
        hooks: dict[str, list[Hook]],
        per_field: list[SchemaExtension],
    ) -> GraphQLExecutionResult | ExecutionResult:
        async with _Stage(hooks["on_execute"]):
            if not execution.result:
                outcome = self.execute_function(
                    self.graphql_schema,
                    execution.graphql_document,
                    root_value=execution.root_value,
                    middleware=MiddlewareManager(*per_field) if per_field else None,
                    variable_values=execution.variables,
                    operation_name=execution.operation_name,
                    context_value=execution.context,
                    is_awaitable=optimized_is_awaitable,
                    operation_extensions=execution.operation_extensions,
                    **self.execution_kwargs,
                )
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                execution.result = outcome
            result = execution.result
        assert isinstance(result, GraphQLExecutionResult | ExecutionResult)
        return result

    @staticmethod
    async def _extension_results(
        extensions: list[SchemaExtension], execution: ExecutionContext
    ) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in extensions:
            if type(extension).get_results is not SchemaExtension.get_results:
                found = extension.get_results()
                data.update(await found if inspect.isawaitable(found) else found)
        data.update(execution.extensions_results)
        return data


class _Stage:
    """One stage's hooks around the code it wraps: entered in order, left in reverse.
    An error raised inside is thrown into each hook and raised again, whatever they do."""

    __slots__ = ("entered", "hooks")

    def __init__(self, hooks: list[Hook]) -> None:
        self.hooks = hooks
        self.entered: Entered = []

    async def __aenter__(self) -> None:
        self.entered = await _enter(self.hooks)

    async def __aexit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        await _leave(self.entered, error)


async def _enter(hooks: list[Hook]) -> Entered:
    """Run each hook up to its ``yield`` (a function or coroutine: all of it), in order."""
    entered: Entered = []
    try:
        for extension, function, kind in hooks:
            if kind is HookKind.GENERATOR:
                generator = function(extension)
                next(generator)
                entered.append((generator, False))
            elif kind is HookKind.ASYNC_GENERATOR:
                generator = function(extension)
                await generator.__anext__()
                entered.append((generator, True))
            elif kind is HookKind.COROUTINE:
                await function(extension)
            else:
                function(extension)
    except BaseException as error:
        await _leave(entered, error)
        raise
    return entered


async def _leave(entered: Entered, error: BaseException | None) -> None:
    """Finish the entered hooks in reverse order, as nested ``with`` blocks would: an error
    is thrown into each, which may swallow it, or replace it with its own."""
    for generator, asynchronous in reversed(entered):
        try:
            if error is None:
                if asynchronous:
                    await generator.__anext__()
                else:
                    next(generator)
            elif asynchronous:
                await generator.athrow(error)
            else:
                generator.throw(error)
        except (StopIteration, StopAsyncIteration):
            error = None  # finished; an error thrown in was swallowed
            continue
        except BaseException as raised:
            error = raised
            continue
        raise RuntimeError(f"the hook {generator!r} yielded more than once")
    if error is not None:
        raise error
