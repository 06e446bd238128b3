"""What two answers to one operation must share, and a readable account of how they differ.

``data`` must be equal, key order included (a response's fields come in the order
they were selected). Errors are compared by path, in any order: at each path, the
same messages with the same ``extensions`` (the request id aside) and locations.

One relaxation, forced by the specification, not chosen: when several errors could
null the same position (two non-null siblings both fail, and their parent is nulled),
*which* of them is reported depends on the order the fields finish, and graphql-core
reports the first it meets, dropping the rest (errors under a nulled position are not
collected). So errors whose path lies *below* a null in ``data`` (swallowed errors) are
compared by the null that swallowed them (their anchor): both answers must explain the
same nulls, and, when a reference is given (the operation run again with
``@experimental_disableErrorPropagation``, which reports every error at its own path),
every swallowed error either answer reports must be one the operation really raises.
Errors at a position present in ``data`` (a null field with its own error) are
compared exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError

from switchyard.errors import present_error

REQUEST_ID = "differential"
IGNORED_ERROR_EXTENSIONS = frozenset({"requestId"})


@dataclass
class Answer:
    """One path's answer: data, errors as clients see them, and what else is compared."""

    data: Any
    errors: list[dict[str, Any]]
    status: int | None = None
    path_taken: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def shown(self) -> str:
        body: dict[str, Any] = {"data": self.data}
        if self.errors:
            body["errors"] = self.errors
        if self.status is not None:
            body["status"] = self.status
        body["path"] = self.path_taken
        return json.dumps(body, indent=1, sort_keys=False, default=str)


def presented(errors: Sequence[GraphQLError] | None) -> list[dict[str, Any]]:
    """Errors as the gateway presents them, with graphql-core's own message beside.

    The presenter hides unexpected errors behind "Internal server error."; the
    original message (``rawMessage``) tells two different such errors apart.
    """
    shown = []
    for error in errors or ():
        formatted = dict(present_error(error, REQUEST_ID).formatted)
        formatted["rawMessage"] = error.message
        shown.append(formatted)
    return shown


def _ordered(value: Any) -> Any:
    """``value`` with every object as a list of pairs: equality then sees key order."""
    if isinstance(value, Mapping):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def _path_key(error: Mapping[str, Any]) -> str:
    path = error.get("path")
    return "<no path>" if path is None else ".".join(str(p) for p in path)


def _described(error: Mapping[str, Any]) -> str:
    extensions = {
        key: value
        for key, value in (error.get("extensions") or {}).items()
        if key not in IGNORED_ERROR_EXTENSIONS
    }
    return json.dumps(
        {
            "message": error.get("message"),
            "rawMessage": error.get("rawMessage"),
            "extensions": extensions,
            "locations": error.get("locations"),
        },
        sort_keys=True,
    )


def errors_by_path(errors: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Each path to the sorted errors at it (message, extensions, locations)."""
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(_path_key(error), []).append(_described(error))
    return {path: sorted(found) for path, found in sorted(grouped.items())}


def anchor_of(data: Any, path: Sequence[str | int] | None) -> tuple[str, ...] | None:
    """The null in ``data`` strictly above ``path`` (an error swallowed by it), else None."""
    if path is None:
        return None
    value = data
    for depth, key in enumerate(path):
        if value is None:
            return tuple(str(p) for p in path[:depth])
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return tuple(str(p) for p in path[:depth])
    return None


def split_errors(
    answer: Answer,
) -> tuple[list[dict[str, Any]], dict[tuple[str, ...], list[dict[str, Any]]]]:
    """The errors at positions present in ``data``, and the swallowed ones by anchor."""
    visible: list[dict[str, Any]] = []
    swallowed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for error in answer.errors:
        anchor = anchor_of(answer.data, error.get("path"))
        if anchor is None:
            visible.append(error)
        else:
            swallowed.setdefault(anchor, []).append(error)
    return visible, swallowed


def _identity(error: Mapping[str, Any]) -> str:
    return f"{_path_key(error)} {_described(error)}"


def difference(
    expected: Answer, actual: Answer, reference: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """How ``actual`` (planned) differs from ``expected`` (standard); empty when it does not.

    ``reference``: every error the operation raises, each at its own path (see above).
    """
    found: list[str] = []
    if expected.data != actual.data:
        found.append("data differs")
    elif _ordered(expected.data) != _ordered(actual.data):
        found.append("data differs in key order")
    expected_visible, expected_swallowed = split_errors(expected)
    actual_visible, actual_swallowed = split_errors(actual)
    want, got = errors_by_path(expected_visible), errors_by_path(actual_visible)
    for path in sorted(set(want) | set(got)):
        if want.get(path) != got.get(path):
            found.append(
                f"errors at {path}: standard {want.get(path, [])}, planned {got.get(path, [])}"
            )
    for anchor in sorted(set(expected_swallowed) | set(actual_swallowed)):
        if (anchor in expected_swallowed) != (anchor in actual_swallowed):
            shown = ".".join(anchor) or "data"
            found.append(
                f"errors swallowed by the null at {shown}: "
                f"standard {[_identity(e) for e in expected_swallowed.get(anchor, [])]}, "
                f"planned {[_identity(e) for e in actual_swallowed.get(anchor, [])]}"
            )
    if reference is not None:
        raised = {_identity(error) for error in reference}
        for name, swallowed in (("standard", expected_swallowed), ("planned", actual_swallowed)):
            for errors in swallowed.values():
                for error in errors:
                    if _identity(error) not in raised:
                        found.append(f"{name} reports an error never raised: {_identity(error)}")
    if expected.status != actual.status:
        found.append(f"status: standard {expected.status}, planned {actual.status}")
    for key in sorted(set(expected.extra) | set(actual.extra)):
        if expected.extra.get(key) != actual.extra.get(key):
            found.append(
                f"{key}: standard {expected.extra.get(key)!r}, planned {actual.extra.get(key)!r}"
            )
    return found


@dataclass
class Mismatch:
    label: str
    operation: str
    problems: list[str]
    standard: Answer
    planned: Answer

    def report(self) -> str:
        return "\n".join(
            [
                f"=== {self.label}",
                self.operation,
                *(f"- {problem}" for problem in self.problems),
                "--- standard:",
                self.standard.shown(),
                "--- planned:",
                self.planned.shown(),
            ]
        )


@dataclass
class Tally:
    """Mismatches and the paths taken over a run."""

    mismatches: list[Mismatch] = field(default_factory=list)
    executed: int = 0
    planned: int = 0
    compared: int = 0
    fallbacks: list[str] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    """``extensions.code`` of the errors the standard path answered, counted."""
    swallowed: int = 0
    """Nulls that swallowed errors below them (null propagation), in the standard answers."""

    def record(
        self,
        label: str,
        operation: str,
        standard: Answer,
        planned: Answer,
        reference: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.compared += 1
        self.codes.update(str((e.get("extensions") or {}).get("code")) for e in standard.errors)
        self.swallowed += len(split_errors(standard)[1])
        problems = difference(standard, planned, reference)
        if problems:
            self.mismatches.append(Mismatch(label, operation, problems, standard, planned))

    def count_path(self, taken: str | None, operation: str) -> None:
        self.executed += 1
        if taken == "planned":
            self.planned += 1
        else:
            self.fallbacks.append(f"[{taken}] {operation}")

    def failure(self, shown: int = 5) -> str:
        reports = [m.report() for m in self.mismatches[:shown]]
        more = len(self.mismatches) - shown
        if more > 0:
            reports.append(f"... and {more} more mismatches")
        labels = ", ".join(m.label for m in self.mismatches)
        return (
            f"{len(self.mismatches)} of {self.compared} operations answered differently "
            f"({labels}):\n\n" + "\n\n".join(reports)
        )

    def share_planned(self) -> float:
        return self.planned / self.executed if self.executed else 0.0
