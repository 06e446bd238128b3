"""A selection's fill, compiled: one Python function per selection plan, made on first use.

The generic fill (``PlannedExecutor._fill``) loops over field plans and
dispatches on their kind for every object of the answer. For a selection, the
compiled function does the same work in straight-line code: an attribute read
and a type test per plain field, the key as a constant. It behaves exactly as
the generic fill (tests run both); it exists for speed alone.

    fill = compile_fill(plan)
    fill(executor, source, result, slot)  # True when a null reached past the object
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from switchyard.execution.plan import (
    FieldKind,
    FieldPlan,
    SelectionPlan,
    Shape,
    ShapeKind,
    exact_types,
)

if TYPE_CHECKING:
    from switchyard.execution.executor import Entries, PlannedExecutor
    from switchyard.execution.slot import Slot

Fill = Callable[["PlannedExecutor", Any, dict[str, Any], "Slot | None"], bool]
Complete = Callable[["PlannedExecutor", "Entries", list[Any]], None]


def _plain_object(shape: Shape | None) -> bool:
    """An object shape completed by its selection's fill alone (no type check)."""
    return (
        shape is not None
        and shape.kind is ShapeKind.OBJECT
        and shape.selection is not None
        and shape.selection.is_type_of is None
    )


def _escape(non_null: bool, indent: str, in_loop: bool) -> list[str]:
    """A null reaching past the parent: a fill returns True; in a loop over parents the
    parent is nulled already, and the loop goes on."""
    return [] if in_loop else [f"{indent}if {non_null}:", f"{indent}    return True"]


def _inline_objects(
    shape: Shape | None, index: int, key: str, names: dict[str, Any], in_loop: bool = False
) -> list[str]:
    """``elif`` branches completing an object, or a list of objects, without the generic
    calls: the child selection's fill is called directly (what ``_complete_object`` does);
    ``in_loop``: inside a loop over parents (``_escape``)."""
    if shape is None:
        return []
    if _plain_object(shape):
        assert shape.selection is not None
        names[f"C{index}"] = shape.selection
        return [
            "        elif value is not None:",
            "            child = {}",
            f"            result[{key}] = child",
            f"            fill = C{index}.fill or ex._fill_of(C{index})",
            f"            at = (slot, result, {key}, {not shape.non_null})",
            *(
                ["            fill(ex, value, child, at)"]
                if in_loop
                else [
                    "            if fill(ex, value, child, at):",
                    f"                if {shape.non_null}:",
                    "                    return True",
                ]
            ),
        ]
    item = shape.item
    if shape.kind is ShapeKind.LIST and _plain_object(item):
        assert item is not None and item.selection is not None
        names[f"C{index}"] = item.selection
        names[f"I{index}"] = item
        return [
            "        elif value.__class__ is list:",
            "            items = [None] * len(value)",
            f"            result[{key}] = items",
            f"            at = (slot, result, {key}, {not shape.non_null})",
            f"            fill = C{index}.fill or ex._fill_of(C{index})",
            "            for position, element in enumerate(value):",
            "                if element is None:",
            f"                    if ex._complete(I{index}, None, items, position, at, F{index}):",
            *_escape(shape.non_null, "                        ", in_loop),
            "                        break",
            "                    continue",
            "                child = {}",
            "                items[position] = child",
            f"                here = (at, items, position, {not item.non_null})",
            "                if fill(ex, element, child, here):",
            f"                    if {item.non_null}:",
            *_escape(shape.non_null, "                        ", in_loop),
            "                        break",
        ]
    return []


def compile_fill(plan: SelectionPlan) -> Fill:
    """The fill of ``plan``'s fields as one function (see the module's docs)."""
    names: dict[str, Any] = {}
    lines = ["def fill(ex, source, result, slot):"]
    if any(f.kind in (FieldKind.BATCH, FieldKind.RESOLVE) for f in plan.fields):
        lines.append("    pending = ex._pending")
    for index, field_plan in enumerate(plan.fields):
        key = repr(field_plan.key)
        plan_name = f"F{index}"
        names[plan_name] = field_plan
        kind = field_plan.kind
        if kind is FieldKind.TYPENAME:
            lines.append(f"    result[{key}] = {plan.object_type.name!r}")
            continue
        if kind is FieldKind.BATCH or kind is FieldKind.RESOLVE:
            lines.append(f"    result[{key}] = None")
            lines.append(f"    pending[{plan_name}].append((source, result, slot))")
            continue
        attribute = field_plan.attribute
        read = (
            f"source.{attribute}"
            if attribute.isidentifier() and not attribute.startswith("__")
            else f"getattr(source, {attribute!r})"
        )
        names[f"S{index}"] = field_plan.output
        names[f"A{index}"] = field_plan.as_is
        lines.append("    try:")
        if kind is FieldKind.GUARDED_ATTRIBUTE:
            lines.append(f"        refusal = ex._refusal({plan_name}, source)")
            lines.append("        if refusal is not None:")
            lines.append("            raise refusal")
        lines.append(f"        value = {read}")
        lines.append("    except Exception as error:")
        lines.append(f"        if ex._field_error(error, slot, result, {plan_name}):")
        lines.append("            return True")
        lines.append("    else:")
        lines.append(f"        if value.__class__ in A{index}:")
        lines.append(f"            result[{key}] = value")
        lines.extend(_inline_objects(field_plan.output, index, key, names))
        lines.append(
            f"        elif ex._complete(S{index}, value, result, {key}, slot, {plan_name}):"
        )
        lines.append("            return True")
    lines.append("    return False")
    source_code = "\n".join(lines)
    namespace: dict[str, Any] = {}
    code = compile(source_code, f"<fill {plan.object_type.name}>", "exec")
    exec(code, names, namespace)  # the text is built above from names and constants only
    fill: Fill = namespace["fill"]
    return fill


def compile_complete(field_plan: FieldPlan) -> Complete:
    """Completion of a batched field's values, one per parent entry, as one function:
    what ``_resolve_field``'s loop does through ``_field_error`` and ``_complete``."""
    output = field_plan.output
    assert output is not None
    key = repr(field_plan.key)
    names: dict[str, Any] = {"F0": field_plan, "S0": output, "A0": exact_types(output)}
    lines = [
        "def complete(ex, entries, values):",
        "    for (source, result, slot), value in zip(entries, values, strict=True):",
        "        if value.__class__ in A0:",
        f"            result[{key}] = value",
        "        elif isinstance(value, Exception):",
        "            ex._field_error(value, slot, result, F0)",
    ]
    lines.extend(_inline_objects(output, 0, key, names, in_loop=True))
    lines.append("        else:")
    lines.append(f"            ex._complete(S0, value, result, {key}, slot, F0)")
    source_code = "\n".join(lines)
    namespace: dict[str, Any] = {}
    name = f"<complete {field_plan.parent_type.name}.{field_plan.name}>"
    exec(compile(source_code, name, "exec"), names, namespace)  # names and constants only
    complete: Complete = namespace["complete"]
    return complete
