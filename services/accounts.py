"""The accounts REST service: users.

    GET /users/{id}            -> User
    GET /users?ids=1,2,3       -> {"users": [User, ...]}
    GET /users?first=20&after=C -> {"users": [...], "pageInfo": ..., "totalCount": N}

Run it with ``python -m services.run accounts --port 7001``.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.data import DemoData, User
from services.faults import FaultConfig
from services.rest import (
    build_rest_app,
    json_response,
    not_found,
    page_body,
    page_window,
    parse_ids,
    reject_combined,
)

SERVICE_NAME = "accounts"


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "tier": user.tier,
        "createdAt": user.created_at,
    }


def create_app(data: DemoData, *, faults: FaultConfig | None = None) -> Starlette:
    """The accounts app over ``data`` (users ascending by numeric id)."""
    users = [user_json(u) for u in data.users]
    by_id = {u["id"]: u for u in users}

    async def get_user(request: Request) -> Response:
        user = by_id.get(request.path_params["id"])
        if user is None:
            raise not_found()
        return json_response(user)

    async def list_users(request: Request) -> Response:
        if "ids" in request.query_params:
            reject_combined(request, "ids", ("first", "after"))
            ids = parse_ids(request, "ids")
            return json_response({"users": [by_id[i] for i in ids if i in by_id]})
        window = page_window(request, len(users))
        return json_response(page_body("users", users[window.start : window.stop], window))

    routes = [Route("/users", list_users), Route("/users/{id}", get_user)]
    return build_rest_app(SERVICE_NAME, routes, faults=faults)
