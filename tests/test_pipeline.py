"""One visible pipeline: the stages in order, each decision made once, one way to present errors."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLError,
)

import switchyard
from schema import graph as demo_graph
from switchyard.app import Gateway
from switchyard.config import validate_config
from switchyard.errors import ErrorCode, response_status
from switchyard.limits import OperationLimits
from switchyard.pipeline import Stage, assemble
from tests.conftest import gateway_settings, unreachable_addresses

RUNTIME = Path(switchyard.__file__).parent


def gateway_for(**sections: Any) -> Gateway:
    return Gateway(
        validate_config(gateway_settings(unreachable_addresses(), **sections)), demo_graph
    )


def test_the_stages_are_listed_in_the_order_a_request_meets_them() -> None:
    assert [stage.value for stage in Stage] == [
        "http",
        "authenticate",
        "persisted",
        "parse",
        "limits",
        "validate",
        "cost",
        "budget",
        "execute",
        "present",
        "respond",
        "settle",
    ]
    assert assemble(gateway_for()).stages == list(Stage)


def test_a_disabled_feature_adds_no_unit_to_the_pipeline() -> None:
    shape_limits_off = dict.fromkeys(OperationLimits.SHAPE_LIMITS, 0)
    lean = gateway_for(
        cost={"mode": "off"},
        limits=shape_limits_off,
        metrics={"enabled": False},
        access_log={"enabled": False},
        apq={"enabled": False},
        compression={"enabled": False},
    )
    full = gateway_for(
        cost={"mode": "enforce"},
        budgets={"enabled": True},
        metrics={"enabled": False},
        access_log={"enabled": False},
    )
    assert len(lean.pipeline.operation) == 1  # parse, limits and validate: one document cache
    assert len(full.pipeline.operation) == 2  # and cost (with budget and settle)
    assert lean.budgets_enabled is False and full.budgets_enabled is True
    assert [m.cls.__name__ for m in lean.pipeline.middleware] == [  # type: ignore[attr-defined]
        "RequestIdMiddleware",
        "HttpLimitsMiddleware",
        "AuthenticationMiddleware",
    ]


def string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_every_error_code_is_written_once_in_the_enumeration() -> None:
    codes = {code.value for code in ErrorCode}
    elsewhere = [
        f"{path.name}:{line}: {value}"
        for path in RUNTIME.rglob("*.py")
        if path != RUNTIME / "errors.py"
        for line, value in string_constants(path)
        if value in codes
    ]
    assert elsewhere == []


def test_only_the_presenter_builds_an_errors_body() -> None:
    builders = [
        f"{path.name}:{node.lineno}"
        for path in RUNTIME.rglob("*.py")
        if path != RUNTIME / "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Dict)
        and any(
            isinstance(k, ast.Constant)
            and k.value == "errors"
            and isinstance(v, ast.List | ast.ListComp)
            for k, v in zip(node.keys, node.values, strict=True)
        )
    ]
    assert builders == []


@pytest.mark.parametrize(
    ("codes", "has_data", "status"),
    [
        ([ErrorCode.GRAPHQL_PARSE_FAILED], False, 400),
        ([ErrorCode.COST_LIMIT_EXCEEDED], False, 400),
        ([ErrorCode.RATE_LIMITED], False, 429),
        ([ErrorCode.UNAUTHENTICATED], False, 401),
        ([ErrorCode.FORBIDDEN], False, 403),
        ([ErrorCode.BAD_USER_INPUT, ErrorCode.UNAUTHENTICATED], False, 401),
        ([ErrorCode.UPSTREAM_UNAVAILABLE], True, 200),
        ([ErrorCode.INTERNAL_SERVER_ERROR], False, 200),
    ],
)
def test_one_rule_maps_outcomes_to_http_statuses(
    codes: list[ErrorCode], has_data: bool, status: int
) -> None:
    errors = [GraphQLError("x", extensions={"code": code.value}) for code in codes]
    assert response_status(errors, has_data=has_data) == status


def test_field_errors_answer_200_even_without_data() -> None:
    error = GraphQLError("x", path=["user"], extensions={"code": "BAD_USER_INPUT"})
    assert response_status([error], has_data=False) == 200
