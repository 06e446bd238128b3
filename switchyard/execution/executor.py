"""The planned execution: an operation's plan run level by level, values filled in place.

graphql-core completes every field through an awaitable of its own, and
Strawberry wraps every resolver: about 50 microseconds per field, most of a
large answer's time. Here, for an operation that has a plan
(``switchyard.execution.plan``):

- plain fields are attribute reads and leaves their serializer, written
  straight into the answer's dicts, depth first, as graphql-core orders them;
- a field served by a declared edge is set aside with its parent; once the
  synchronous part of a level is done, each such field makes one batch call
  for all its parents (the loaders make that one upstream call per
  ``max_batch`` keys), all fields of the level concurrently, and each answer
  is filled as soon as it arrives, setting aside the next level's edges;
- a field with a resolver of its own runs it per parent, as graphql-core does.

Errors follow the specification as graphql-core implements it: located at the
field's path, a null at a non-null position nulls the nearest nullable
ancestor, and errors under a position already nulled are dropped.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from enum import StrEnum
from typing import Any, ClassVar

from graphql import (
    GraphQLAbstractType,
    GraphQLError,
    GraphQLResolveInfo,
    located_error,
)
from graphql.execution.executor import invalid_return_type_error
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from switchyard.execution.compiled import Complete, Fill, compile_complete, compile_fill
from switchyard.execution.plan import (
    FieldKind,
    FieldPlan,
    OperationPlan,
    PlanCache,
    Planner,
    SelectionPlan,
    Shape,
    ShapeKind,
    Unplannable,
)
from switchyard.execution.slot import CONTAINER, KEY, NULLABLE, PARENT, Slot


class ExecutionPath(StrEnum):
    """Which execution answered an operation."""

    PLANNED = "planned"
    STANDARD = "standard"


_ROOT = id(None)
"""The root's key in ``_nulled``: a null that reached the whole answer."""

Entries = list[tuple[Any, dict[str, Any], Slot | None]]
"""Parents of a field set aside: ``(parent value, parent's dict, its slot)``."""
Pending = dict[FieldPlan, Entries]
"""Fields set aside for the next batch: per field, ``(parent value, parent's dict, its slot)``."""


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, running planned operations without per-field machinery.

    ``plans`` is shared by every request of one schema; ``PlannedExecutor.using(cache)``
    makes the class a gateway passes as ``execution_context_class``.
    """

    plans: ClassVar[PlanCache] = PlanCache()
    compiled: ClassVar[bool] = True
    """Fill objects with their selection's compiled function (else the generic loop)."""

    @classmethod
    def using(cls, plans: PlanCache) -> type[PlannedExecutor]:
        return type(cls.__name__, (cls,), {"plans": plans})

    def execute_operation(self, serially: bool | None = None) -> Any:
        plan = self._plan()
        if isinstance(plan, Unplannable):
            self._note(ExecutionPath.STANDARD, str(plan))
            return super().execute_operation(serially)
        self._note(ExecutionPath.PLANNED, None)
        return self._execute(plan, plan.serial if serially is None else serially)

    def _plan(self) -> OperationPlan | Unplannable:
        manager = self.middleware_manager
        if manager is not None and manager.middlewares:
            # Per-field middleware (an extension's resolve hook) wants every field's resolver.
            return Unplannable("per-field middleware")
        if self.abort_signal is not None or self.hooks is not None:
            return Unplannable("abort signal or execution hooks")
        planner = Planner(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            self.hide_suggestions,
        )
        try:
            return self.plans.plan(planner)
        except Unplannable as reason:
            return reason

    def _note(self, path: ExecutionPath, fallback: str | None) -> None:
        """Tell a context with an ``execution`` attribute (and ``execution_fallback``) which
        path runs, and why not the planned one."""
        context = self.context_value
        if hasattr(context, "execution"):
            context.execution = path
        if hasattr(context, "execution_fallback"):
            context.execution_fallback = fallback

    # -- running a plan -------------------------------------------------------------------

    async def _execute(self, plan: OperationPlan, serially: bool) -> Any:
        self._nulled: dict[int, Slot | None] = {}
        """Positions nulled by an error, by ``id`` (the root's: ``id(None)``)."""
        self._pending: Pending = defaultdict(list)
        self._arguments: dict[FieldPlan, dict[str, Any] | Exception] = {}
        data: dict[str, Any] = {}
        root = plan.root
        if serially:
            for field_plan in root.fields:
                await self._settle(self._fill_fields(root, [field_plan], self.root_value, data))
        else:
            await self._settle(self._fill_fields(root, root.fields, self.root_value, data))
        return self.build_response(None if _ROOT in self._nulled else data)

    def _fill_fields(
        self, plan: SelectionPlan, fields: list[FieldPlan], source: Any, result: dict[str, Any]
    ) -> Pending:
        pending = self._pending = defaultdict(list)
        self._fill(plan, fields, source, result, None)
        return pending

    async def _settle(self, pending: Pending) -> None:
        """Resolve the fields set aside, each for all its parents, and what they set aside."""
        if not pending:
            return
        if len(pending) == 1:
            [(field_plan, entries)] = pending.items()
            await self._resolve_field(field_plan, entries)
            return
        await asyncio.gather(*(self._resolve_field(f, e) for f, e in pending.items()))

    async def _resolve_field(self, field_plan: FieldPlan, entries: Entries) -> None:
        if self._nulled:
            entries = [entry for entry in entries if not self._is_nulled(entry[2])]
            if not entries:
                return
        try:
            values = await self._values(field_plan, entries)
        except Exception as error:  # the whole call failed: every parent's field did
            values = [error] * len(entries)
        pending = self._pending = defaultdict(list)
        if self.compiled:
            (field_plan.complete or self._complete_of(field_plan))(self, entries, values)
        else:
            output = field_plan.output
            assert output is not None
            key = field_plan.key
            for (_source, result, slot), value in zip(entries, values, strict=True):
                if isinstance(value, Exception):
                    self._field_error(value, slot, result, field_plan)
                else:
                    self._complete(output, value, result, key, slot, field_plan)
        await self._settle(pending)

    async def _values(self, field_plan: FieldPlan, entries: Entries) -> list[Any]:
        arguments = self._arguments_of(field_plan)
        if field_plan.kind is FieldKind.BATCH:
            batch = field_plan.batch
            assert batch is not None
            if isinstance(arguments, Exception):
                return [arguments] * len(entries)
            sources = [entry[0] for entry in entries]
            if not field_plan.rules:
                return await batch(self.context_value, sources, arguments)
            values: list[Any] = [None] * len(sources)
            allowed: list[int] = []
            for index, source in enumerate(sources):
                refusal = self._refusal(field_plan, source)
                if refusal is None:
                    allowed.append(index)
                else:
                    values[index] = refusal
            if allowed:
                answers = await batch(self.context_value, [sources[i] for i in allowed], arguments)
                for index, answer in zip(allowed, answers, strict=True):
                    values[index] = answer
            return values
        return await self._resolve_each(field_plan, entries, arguments)

    async def _resolve_each(
        self,
        field_plan: FieldPlan,
        entries: Entries,
        arguments: dict[str, Any] | Exception,
    ) -> list[Any]:
        """The field's own resolver for each parent, with the info graphql-core would give."""
        if isinstance(arguments, Exception):
            return [arguments] * len(entries)
        definition = field_plan.definition
        assert definition is not None
        resolve = definition.resolve or self.field_resolver
        values: list[Any] = []
        waiting: list[tuple[int, Awaitable[Any]]] = []
        for source, _result, slot in entries:
            info = self._info(field_plan, slot)
            try:
                value = resolve(source, info, **arguments)
            except Exception as error:
                value = error
            if self.is_awaitable(value):
                waiting.append((len(values), value))
            values.append(value)
        if waiting:
            settled = await asyncio.gather(*(w for _, w in waiting), return_exceptions=True)
            for (index, _), value in zip(waiting, settled, strict=True):
                if isinstance(value, BaseException) and not isinstance(value, Exception):
                    raise value
                values[index] = value
        return values

    def _arguments_of(self, field_plan: FieldPlan) -> dict[str, Any] | Exception:
        if field_plan.arguments is not None:
            return field_plan.arguments
        if not field_plan.has_arguments:
            return {}
        found = self._arguments.get(field_plan)
        if found is None:
            assert field_plan.definition is not None
            try:
                found = get_argument_values(
                    field_plan.definition,
                    field_plan.nodes[0],
                    self.variable_values,
                    field_plan.details[0].fragment_variable_values,
                    self.hide_suggestions,
                )
            except Exception as error:
                found = error
            self._arguments[field_plan] = found
        return found

    def _refusal(self, field_plan: FieldPlan, source: Any) -> Exception | None:
        caller = self.context_value.caller
        for rule in field_plan.rules:
            refusal = rule(caller, source)
            if refusal is not None:
                return refusal
        return None

    # -- completing values, synchronously ---------------------------------------------------

    def _fill(
        self,
        plan: SelectionPlan,
        fields: list[FieldPlan],
        source: Any,
        result: dict[str, Any],
        slot: Slot | None,
    ) -> bool:
        """Fill ``result`` with the fields of ``source``; True when a null had to reach past
        it (the object and its parent are then nulled, and the rest is left undone)."""
        for field_plan in fields:
            kind = field_plan.kind
            if kind is FieldKind.ATTRIBUTE:
                try:
                    value = getattr(source, field_plan.attribute)
                except Exception as error:
                    if self._field_error(error, slot, result, field_plan):
                        return True
                    continue
                if value.__class__ in field_plan.as_is:
                    result[field_plan.key] = value
                    continue
            elif kind is FieldKind.TYPENAME:
                result[field_plan.key] = plan.object_type.name
                continue
            elif kind is FieldKind.GUARDED_ATTRIBUTE:
                try:
                    refusal = self._refusal(field_plan, source)
                    if refusal is not None:
                        raise refusal
                    value = getattr(source, field_plan.attribute)
                except Exception as error:
                    if self._field_error(error, slot, result, field_plan):
                        return True
                    continue
            else:
                result[field_plan.key] = None
                self._pending[field_plan].append((source, result, slot))
                continue
            output = field_plan.output
            assert output is not None
            if self._complete(output, value, result, field_plan.key, slot, field_plan):
                return True
        return False

    def _complete(
        self,
        shape: Shape,
        value: Any,
        container: Any,
        key: str | int,
        parent: Slot | None,
        field_plan: FieldPlan,
    ) -> bool:
        """Write ``value`` completed by ``shape`` at ``container[key]``; True when a null
        had to reach past ``parent`` (see ``_fill``)."""
        if value is None:
            if shape.non_null:
                message = (
                    "Cannot return null for non-nullable field "
                    f"{field_plan.parent_type.name}.{field_plan.name}."
                )
                return self._error(TypeError(message), parent, container, key, False, field_plan)
            container[key] = None
            return False
        kind = shape.kind
        if kind is ShapeKind.LEAF:
            serialize = shape.serialize
            assert serialize is not None
            try:
                container[key] = serialize(value)
            except Exception as error:
                return self._error(error, parent, container, key, not shape.non_null, field_plan)
            return False
        if isinstance(value, Exception):
            return self._error(value, parent, container, key, not shape.non_null, field_plan)
        if kind is ShapeKind.OBJECT:
            selection = shape.selection
            assert selection is not None
            return self._complete_object(
                shape, selection, value, container, key, parent, field_plan
            )
        if kind is ShapeKind.LIST:
            return self._complete_list(shape, value, container, key, parent, field_plan)
        return self._complete_abstract(shape, value, container, key, parent, field_plan)

    def _complete_object(
        self,
        shape: Shape,
        selection: SelectionPlan,
        value: Any,
        container: Any,
        key: str | int,
        parent: Slot | None,
        field_plan: FieldPlan,
    ) -> bool:
        if selection.is_type_of is not None and not selection.is_type_of(value, None):
            error = invalid_return_type_error(selection.object_type, value, field_plan.details)
            return self._error(error, parent, container, key, not shape.non_null, field_plan)
        result: dict[str, Any] = {}
        container[key] = result
        slot = (parent, container, key, not shape.non_null)
        if not self.compiled:
            killed = self._fill(selection, selection.fields, value, result, slot)
        else:
            killed = (selection.fill or self._fill_of(selection))(self, value, result, slot)
        return shape.non_null if killed else False

    def _complete_of(self, field_plan: FieldPlan) -> Complete:
        """The batched field's compiled completion, made now if it is the first use."""
        complete = field_plan.complete
        if complete is None:
            complete = field_plan.complete = compile_complete(field_plan)
        return complete

    def _fill_of(self, selection: SelectionPlan) -> Fill:
        """The selection's compiled fill, made now if it is the first use."""
        fill = selection.fill
        if fill is None:
            fill = selection.fill = compile_fill(selection)
        return fill

    def _complete_list(
        self,
        shape: Shape,
        value: Any,
        container: Any,
        key: str | int,
        parent: Slot | None,
        field_plan: FieldPlan,
    ) -> bool:
        item = shape.item
        assert item is not None
        if type(value) is not list and not is_iterable(value):
            message = (
                "Expected Iterable, but did not find one for field "
                f"'{field_plan.parent_type.name}.{field_plan.name}'."
            )
            error = GraphQLError(message)
            return self._error(error, parent, container, key, not shape.non_null, field_plan)
        items = list(value)
        completed: list[Any] = [None] * len(items)
        container[key] = completed
        slot = (parent, container, key, not shape.non_null)
        for index, element in enumerate(items):
            if self._complete(item, element, completed, index, slot, field_plan):
                return shape.non_null
        return False

    def _complete_abstract(
        self,
        shape: Shape,
        value: Any,
        container: Any,
        key: str | int,
        parent: Slot | None,
        field_plan: FieldPlan,
    ) -> bool:
        abstract = shape.graphql_type
        assert isinstance(abstract, GraphQLAbstractType)
        info = self._info(field_plan, parent, key)
        try:
            resolve_type = abstract.resolve_type or self.type_resolver
            name = resolve_type(value, info, abstract)
            if self.is_awaitable(name):
                asyncio.ensure_future(name).cancel()
                raise TypeError(f"The type of a {abstract.name} must be resolved synchronously.")
            runtime_type = self.ensure_valid_runtime_type(
                name, abstract, field_plan.details, info, value
            )
        except Exception as error:
            return self._error(error, parent, container, key, not shape.non_null, field_plan)
        selection = shape.selections[runtime_type.name]
        return self._complete_object(shape, selection, value, container, key, parent, field_plan)

    # -- errors and nulls ---------------------------------------------------------------------

    def _field_error(
        self, raw: Exception, parent: Slot | None, result: dict[str, Any], field_plan: FieldPlan
    ) -> bool:
        """``_error`` for a field of the object ``result`` whose value could not be found."""
        output = field_plan.output
        nullable = output is None or not output.non_null
        return self._error(raw, parent, result, field_plan.key, nullable, field_plan)

    def _error(
        self,
        raw: Exception,
        parent: Slot | None,
        container: Any,
        key: str | int,
        nullable: bool,
        field_plan: FieldPlan,
    ) -> bool:
        """Record ``raw`` at ``container[key]`` and null the nearest nullable position;
        True when that position is above ``parent``'s object (the null reached past it)."""
        error = located_error(raw, field_plan.nodes, _path_list(parent, key))
        if nullable or not self.error_propagation:
            container[key] = None
            self._record(error, (parent, container, key, True))
            return False
        slot = parent
        while slot is not None and not slot[NULLABLE]:
            slot = slot[PARENT]
        if slot is not None:
            slot[CONTAINER][slot[KEY]] = None
        self._record(error, slot)
        return True

    def _record(self, error: GraphQLError, position: Slot | None) -> None:
        if self._is_nulled(position):
            return
        self._nulled[id(position)] = position
        self.collected_errors.errors.append(error)

    def _is_nulled(self, position: Slot | None) -> bool:
        nulled = self._nulled
        if not nulled:
            return False
        if _ROOT in nulled:
            return True
        while position is not None:
            if id(position) in nulled:
                return True
            position = position[PARENT]
        return False

    def _info(
        self, field_plan: FieldPlan, parent: Slot | None, key: str | int | None = None
    ) -> GraphQLResolveInfo[Any]:
        keys = _path_list(parent, field_plan.key if key is None else key)
        path: Path | None = None
        for step in keys:
            path = Path(path, step, None)
        assert path is not None
        assert field_plan.definition is not None
        return self.build_resolve_info(
            field_plan.definition, field_plan.nodes, field_plan.parent_type, path
        )


def _path_list(parent: Slot | None, key: str | int) -> list[str | int]:
    keys = [key]
    while parent is not None:
        keys.append(parent[KEY])
        parent = parent[PARENT]
    keys.reverse()
    return keys
