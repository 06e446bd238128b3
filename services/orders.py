"""The orders REST service, newest first (``createdAt`` descending, then id descending).

    GET /orders/{id}                       -> Order
    GET /orders?ids=1,2                    -> {"orders": [Order, ...]}
    GET /orders?first=20&after=C&status=PAID -> {"orders": [...], "pageInfo": ..., "totalCount": N}
    GET /orders?userIds=1,2,3&first=10     -> {"results": {"1": {"orders": [...], "pageInfo": ...,
                                               "totalCount": N}, ...}}

Every requested user id gets a page in ``results``, empty when it has no orders; ``after``
is accepted only with a single user id. ``status`` filters both listings.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.data import ORDER_STATUSES, DemoData, Order
from services.faults import FaultConfig
from services.rest import (
    RestError,
    build_rest_app,
    json_response,
    not_found,
    page_body,
    page_window,
    parse_ids,
    reject_combined,
)

SERVICE_NAME = "orders"


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "userId": order.user_id,
        "status": order.status,
        "createdAt": order.created_at,
        "currency": order.currency,
        "items": [
            {
                "productId": item.product_id,
                "quantity": item.quantity,
                "unitPriceCents": item.unit_price_cents,
            }
            for item in order.items
        ],
    }


def create_app(data: DemoData, *, faults: FaultConfig | None = None) -> Starlette:
    """The orders app over ``data``, with indexes by status and by user built up front."""
    orders = [order_json(o) for o in data.orders]
    by_id = {o["id"]: o for o in orders}
    by_status: dict[str, list[dict[str, Any]]] = {s: [] for s in ORDER_STATUSES}
    by_user: dict[str, list[dict[str, Any]]] = {}
    by_user_status: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for order in orders:
        by_status[order["status"]].append(order)
        by_user.setdefault(order["userId"], []).append(order)
        by_user_status.setdefault((order["userId"], order["status"]), []).append(order)

    def parse_status(request: Request) -> str | None:
        status = request.query_params.get("status")
        if status is not None and status not in by_status:
            raise RestError(400, f"status must be one of {', '.join(ORDER_STATUSES)}")
        return status

    async def get_order(request: Request) -> Response:
        order = by_id.get(request.path_params["id"])
        if order is None:
            raise not_found()
        return json_response(order)

    async def list_orders(request: Request) -> Response:
        if "ids" in request.query_params:
            reject_combined(request, "ids", ("userIds", "first", "after", "status"))
            ids = parse_ids(request, "ids")
            return json_response({"orders": [by_id[i] for i in ids if i in by_id]})
        status = parse_status(request)
        if "userIds" in request.query_params:
            user_ids = parse_ids(request, "userIds")
            if "after" in request.query_params and len(user_ids) != 1:
                raise RestError(400, "after is accepted only with a single user id")
            results = {}
            for user_id in user_ids:
                selected = (
                    by_user.get(user_id, [])
                    if status is None
                    else by_user_status.get((user_id, status), [])
                )
                window = page_window(request, len(selected))
                results[user_id] = page_body("orders", selected[window.start : window.stop], window)
            return json_response({"results": results})
        selected = orders if status is None else by_status[status]
        window = page_window(request, len(selected))
        return json_response(page_body("orders", selected[window.start : window.stop], window))

    routes = [Route("/orders", list_orders), Route("/orders/{id}", get_order)]
    return build_rest_app(SERVICE_NAME, routes, faults=faults)
