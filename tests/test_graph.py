"""The graph answers exactly as docs/demo-contract.md's precise rules say."""

from __future__ import annotations

import httpx

from tests.conftest import Backends, query


async def test_money_has_two_decimals_and_total_sums_the_items(gateway: httpx.AsyncClient) -> None:
    body = (
        await query(
            gateway,
            "{ orders(first: 20) { edges { node { total { amount currency }"
            " items { quantity unitPrice { amount currency } } } } } }",
        )
    ).json()
    for edge in body["data"]["orders"]["edges"]:
        order = edge["node"]
        cents = 0
        for item in order["items"]:
            whole, fraction = item["unitPrice"]["amount"].split(".")
            assert len(fraction) == 2
            assert item["unitPrice"]["currency"] == order["total"]["currency"]
            cents += item["quantity"] * (int(whole) * 100 + int(fraction))
        assert order["total"]["amount"] == f"{cents // 100}.{cents % 100:02d}"


async def test_orders_come_newest_first(gateway: httpx.AsyncClient) -> None:
    body = (
        await query(gateway, "{ orders(first: 50) { edges { node { id createdAt } } } }")
    ).json()
    keys = [(e["node"]["createdAt"], int(e["node"]["id"])) for e in body["data"]["orders"]["edges"]]
    assert keys == sorted(keys, reverse=True)


async def test_users_paginate_in_id_order_with_cursors(gateway: httpx.AsyncClient) -> None:
    document = (
        "query($after: String) { users(first: 40, after: $after) {"
        " edges { cursor node { id } } pageInfo { hasNextPage endCursor } totalCount } }"
    )
    first = (await query(gateway, document)).json()["data"]["users"]
    second = (await query(gateway, document, {"after": first["pageInfo"]["endCursor"]})).json()
    ids = [int(e["node"]["id"]) for e in first["edges"] + second["data"]["users"]["edges"]]
    assert ids == list(range(1, 81))
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["totalCount"] == 1000
    assert all(edge["cursor"] for edge in first["edges"])


async def test_products_paginate_over_grpc(gateway: httpx.AsyncClient) -> None:
    document = (
        "query($after: String) { products(first: 100, after: $after) {"
        " edges { node { id price { amount } } } pageInfo { hasNextPage endCursor } totalCount } }"
    )
    seen: list[int] = []
    after = None
    while True:
        page = (await query(gateway, document, {"after": after})).json()["data"]["products"]
        seen.extend(int(e["node"]["id"]) for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            assert page["pageInfo"]["endCursor"] is None
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(range(1, 501))
    assert page["totalCount"] == 500


async def test_first_zero_is_an_empty_page_without_any_call(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    body = (
        await query(
            gateway,
            "{ products(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } }"
            " users(first: 0) { edges { cursor } pageInfo { hasNextPage endCursor } } }",
        )
    ).json()
    empty = {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    assert body == {"data": {"products": empty, "users": empty}}
    assert await backends.call_counts() == {}


async def test_first_out_of_range_is_bad_user_input(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await query(gateway, '{ product(id: "1") { reviews(first: 101) { totalCount } } }')
    body = response.json()
    assert response.status_code == 200
    assert body["data"] == {"product": {"reviews": None}}
    assert body["errors"][0]["message"] == "first must be between 0 and 100, got 101"
    assert body["errors"][0]["path"] == ["product", "reviews"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "reviews" not in await backends.call_counts()


async def test_absent_ids_answer_null_without_an_error(gateway: httpx.AsyncClient) -> None:
    body = (
        await query(
            gateway,
            '{ user(id: "999999") { name } order(id: "999999") { id }'
            ' product(id: "999999") { name } }',
        )
    ).json()
    assert body == {"data": {"user": None, "order": None, "product": None}}


async def test_deleted_references_answer_null_without_an_error(gateway: httpx.AsyncClient) -> None:
    body = (
        await query(
            gateway,
            "{ orders(first: 100) { edges { node {"
            " customer { id } items { product { id } } } } } }",
        )
    ).json()
    assert "errors" not in body
    nodes = [edge["node"] for edge in body["data"]["orders"]["edges"]]
    customers = [node["customer"] for node in nodes]
    products = [item["product"] for node in nodes for item in node["items"]]
    assert customers.count(None) < len(customers)
    assert products.count(None) < len(products)


async def test_average_rating_and_reviews_share_one_call(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    body = (
        await query(
            gateway,
            '{ product(id: "2") { averageRating reviews(first: 100) { totalCount'
            " edges { node { rating product { id } } } } } }",
        )
    ).json()
    product = body["data"]["product"]
    ratings = [edge["node"]["rating"] for edge in product["reviews"]["edges"]]
    assert len(ratings) == product["reviews"]["totalCount"]
    if ratings:
        assert product["averageRating"] == round(sum(ratings) / len(ratings), 2)
    else:
        assert product["averageRating"] is None
    assert all(edge["node"]["product"] == {"id": "2"} for edge in product["reviews"]["edges"])
    counts = await backends.call_counts()
    assert counts["reviews"] == 1
    assert "catalog" in counts  # product(id: "2") itself; review.product is cached


async def test_user_orders_are_batched_across_users(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    body = (
        await query(
            gateway,
            "{ users(first: 30) { edges { node { id orders(first: 2) { totalCount"
            " edges { node { id } } } } } } }",
        )
    ).json()
    assert "errors" not in body
    assert len(body["data"]["users"]["edges"]) == 30
    assert await backends.call_counts() == {"accounts": 1, "orders": 1}


async def test_stock_sums_its_warehouses(gateway: httpx.AsyncClient) -> None:
    body = (
        await query(
            gateway,
            "{ products(first: 30) { edges { node { stock { available"
            " warehouses { name available } } } } } }",
        )
    ).json()
    stocks = [e["node"]["stock"] for e in body["data"]["products"]["edges"] if e["node"]["stock"]]
    assert stocks
    for stock in stocks:
        assert stock["available"] == sum(w["available"] for w in stock["warehouses"])
