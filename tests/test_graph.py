"""The graph answers exactly as docs/demo-contract.md's precise rules say."""

from __future__ import annotations

import httpx
import pytest

from services.pagination import encode_cursor
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


# IDs and cursors are checked before any call: nothing a client sends can reach a service
# unchecked, make a URL too long, or make a call answer 500.

ID_LIST = ",".join(str(i) for i in range(1, 501))


async def test_an_id_list_is_bad_user_input_and_reaches_no_service(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await query(gateway, f'{{ user(id: "{ID_LIST}") {{ id name }} }}')
    body = response.json()
    assert response.status_code == 200
    assert body["data"] == {"user": None}
    (error,) = body["errors"]
    assert error["path"] == ["user"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "Invalid ID: an ID here is a decimal integer."
    assert await backends.call_counts() == {}


async def test_many_aliased_id_lists_are_each_bad_user_input_and_nothing_is_called(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    aliases = " ".join(f"u{i}: user(id: $ids) {{ name }}" for i in range(20))
    response = await query(gateway, f"query($ids: ID!) {{ {aliases} }}", {"ids": ID_LIST})
    body = response.json()
    assert response.status_code == 200
    assert body["data"] == {f"u{i}": None for i in range(20)}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"] * 20
    assert await backends.call_counts() == {}


@pytest.mark.parametrize(
    "document",
    [
        '{ user(id: "1 OR 1=1") { name } }',
        '{ user(id: "12345678901234567890") { name } }',  # 20 digits: more than any id
        '{ user(id: "") { name } }',
        '{ user(id: "-1") { name } }',
        '{ user(id: "\\u0661") { name } }',  # a decimal digit, but not an ASCII one
        '{ product(id: "1,2") { name } }',
        '{ order(id: "1&ids=2") { id } }',
    ],
)
async def test_a_malformed_id_is_bad_user_input_at_its_field(
    gateway: httpx.AsyncClient, backends: Backends, document: str
) -> None:
    body = (await query(gateway, document)).json()
    (field,) = body["data"]
    assert body["data"] == {field: None}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        ([field], "BAD_USER_INPUT")
    ]
    assert await backends.call_counts() == {}


async def test_an_id_of_19_digits_is_asked_for_and_absent(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    body = (await query(gateway, '{ user(id: "9223372036854775807") { name } }')).json()
    assert body == {"data": {"user": None}}
    assert await backends.call_counts() == {"accounts": 1}


async def test_a_cursor_no_service_could_have_issued_is_bad_user_input(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    long = "x" * 300
    response = await query(
        gateway,
        "query($c: String) { users(after: $c) { totalCount }"
        " products(first: 2) { edges { node { reviews(first: 1, after: $c) { totalCount } } } } }",
        {"c": long},
    )
    body = response.json()
    assert body["data"]["users"] is None
    assert body["data"]["products"]["edges"] == [
        {"node": {"reviews": None}},
        {"node": {"reviews": None}},
    ]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    assert await backends.call_counts() == {"catalog": 1}  # the products page, nothing else


async def test_a_failed_page_fails_only_its_own_parent(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    # A cursor past the third review: products with fewer answer 400, the others their page.
    response = await query(
        gateway,
        "query($c: String) { products(first: 24) { edges { node { id"
        " reviews(first: 1, after: $c) { totalCount } } } } }",
        {"c": encode_cursor(3)},
    )
    body = response.json()
    reviews = [edge["node"]["reviews"] for edge in body["data"]["products"]["edges"]]
    failed = [r for r in reviews if r is None]
    assert 0 < len(failed) < len(reviews)
    assert all(r["totalCount"] >= 3 for r in reviews if r is not None)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"] * len(failed)
    assert await backends.call_counts() == {"catalog": 1, "reviews": 24}
