"""The shipping service honours the wire contract (docs/demo-contract.md): XML answers
and errors, the absence rules, recording, faults and the hostile modes, checked over real
HTTP against a real service process on a free loopback port."""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET
import xml.sax
import xml.sax.handler
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from services.admin import AdminClient, AdminError, ServiceEndpoint
from services.data import DataSizes, DemoData
from services.faults import FaultConfig
from services.launcher import DemoPlatform, find_free_ports

SEED = 7
SIZES = DataSizes(users=50, products=20, orders=600, reviews=60)
IN_FLIGHT = {"LABEL_CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "EXCEPTION"}
XML = "application/xml"


@pytest.fixture(scope="module")
def data() -> DemoData:
    return DemoData.from_sizes(SEED, SIZES)


@pytest.fixture(scope="module")
def platform() -> Iterator[DemoPlatform]:
    with DemoPlatform(
        ["shipping"], ports={"shipping": find_free_ports(1)}, seed=SEED, sizes=SIZES
    ) as running:
        yield running


@pytest.fixture(scope="module")
def endpoint(platform: DemoPlatform) -> ServiceEndpoint:
    return platform.endpoint("shipping")


@pytest.fixture(scope="module")
async def http(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    address = platform.addresses["shipping"][0]
    async with httpx.AsyncClient(base_url=address, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
async def admin() -> AsyncIterator[AdminClient]:
    async with AdminClient() as client:
        yield client


@pytest.fixture
async def hostile_off(admin: AdminClient, endpoint: ServiceEndpoint) -> AsyncIterator[None]:
    yield
    await admin.set_hostile(endpoint, "off")


def order_ids_with(data: DemoData, status: str, count: int = 2) -> list[str]:
    return sorted((o.id for o in data.orders if o.status == status), key=int)[:count]


def shipment_fields(element: ET.Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in element}


def resolve_external_entities(body: bytes) -> list[str]:
    """The carriers a naive parser, one that resolves external entities, reads in ``body``."""

    class Carriers(xml.sax.handler.ContentHandler):
        def __init__(self) -> None:
            super().__init__()
            self.carriers: list[str] = []
            self.inside = False

        def startElement(self, name: str, attrs: object) -> None:
            if name == "carrier":
                self.inside = True
                self.carriers.append("")

        def endElement(self, name: str) -> None:
            self.inside = False

        def characters(self, content: str) -> None:
            if self.inside:
                self.carriers[-1] += content

    handler = Carriers()
    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    parser.setContentHandler(handler)
    parser.parse(io.BytesIO(body))
    return handler.carriers


# --- data -----------------------------------------------------------------------------


def test_every_shipped_or_delivered_order_has_one_shipment(data: DemoData):
    shipped = {o.id for o in data.orders if o.status in {"SHIPPED", "DELIVERED"}}
    assert set(data.shipments_by_order_id) == shipped
    assert [s.order_id for s in data.shipments] == sorted(shipped, key=int)
    for shipment in data.shipments:
        order = data.orders_by_id[shipment.order_id]
        assert shipment.carrier in {"DHL", "UPS", "FedEx", "PostNL"}
        assert shipment.tracking_number
        if order.status == "DELIVERED":
            assert (shipment.status, shipment.estimated_delivery) == ("DELIVERED", None)
        else:
            assert shipment.status in IN_FLIGHT
            assert shipment.estimated_delivery is not None
            assert date.fromisoformat(shipment.estimated_delivery) > date.fromisoformat(
                order.created_at[:10]
            )
    assert DemoData.from_sizes(SEED, SIZES).shipments == data.shipments
    assert DemoData.from_sizes(SEED + 1, SIZES).shipments != data.shipments


def test_shipments_leave_the_other_generated_data_unchanged():
    # The digest of the data generated before shipments existed, for this seed and size.
    data = DemoData.from_sizes(42, DataSizes(users=50, products=20, orders=300, reviews=60))
    generated = repr((data.users, data.products, data.orders, data.reviews, data.stocks))
    assert hashlib.sha256(generated.encode()).hexdigest() == (
        "0eccaa778e0f893d168a6e94519a25cd51bf4ab09b46db1ba23d31268507d6b4"
    )


# --- answers --------------------------------------------------------------------------


async def test_batch_answers_shipped_and_delivered_orders_in_request_order(http, data):
    shipped, delivered = order_ids_with(data, "SHIPPED"), order_ids_with(data, "DELIVERED")
    absent = [
        *order_ids_with(data, "PENDING", 1),
        *order_ids_with(data, "PAID", 1),
        *order_ids_with(data, "CANCELLED", 1),
        "999999",
        "x",
    ]
    requested = [delivered[0], absent[0], shipped[0], absent[1], absent[2], shipped[1]]
    requested += [delivered[1], absent[3], absent[4], shipped[0]]
    response = await http.get("/shipments", params={"orderIds": ",".join(requested)})
    assert response.status_code == 200
    assert response.headers["content-type"] == XML
    root = ET.fromstring(response.content)
    assert root.tag == "shipments"
    expected = [delivered[0], shipped[0], shipped[1], delivered[1]]
    assert [element.get("orderId") for element in root] == expected
    for element in root:
        assert element.tag == "shipment" and list(element.attrib) == ["orderId"]
        shipment = data.shipments_by_order_id[element.attrib["orderId"]]
        want = {
            "carrier": shipment.carrier,
            "status": shipment.status,
            "trackingNumber": shipment.tracking_number,
        }
        if shipment.estimated_delivery is not None:
            want["estimatedDelivery"] = shipment.estimated_delivery
        assert shipment_fields(element) == want
        assert [child.tag for child in element] == list(want)


async def test_delivered_shipments_have_no_estimated_delivery(http, data):
    ids = order_ids_with(data, "SHIPPED", 20) + order_ids_with(data, "DELIVERED", 20)
    response = await http.get("/shipments", params={"orderIds": ",".join(ids)})
    for element in ET.fromstring(response.content):
        fields = shipment_fields(element)
        if fields["status"] == "DELIVERED":
            assert "estimatedDelivery" not in fields
        else:
            assert fields["status"] in IN_FLIGHT
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["estimatedDelivery"])


async def test_a_batch_without_shipments_is_an_empty_document(http, data):
    ids = [*order_ids_with(data, "PENDING", 3), "999999"]
    response = await http.get("/shipments", params={"orderIds": ",".join(ids)})
    assert (response.status_code, response.content) == (200, b"<shipments></shipments>")


async def test_single_lookup_and_its_404(http, data):
    (order_id,) = order_ids_with(data, "SHIPPED", 1)
    response = await http.get(f"/shipments/{order_id}")
    assert (response.status_code, response.headers["content-type"]) == (200, XML)
    element = ET.fromstring(response.content)
    assert (element.tag, element.attrib) == ("shipment", {"orderId": order_id})
    assert shipment_fields(element)["carrier"] == data.shipments_by_order_id[order_id].carrier
    for missing in [*order_ids_with(data, "PAID", 1), "999999", "nope"]:
        response = await http.get(f"/shipments/{missing}")
        assert (response.status_code, response.headers["content-type"]) == (404, XML)
        assert response.content == b"<error>not found</error>"


async def test_bad_requests_are_400_in_xml(http):
    response = await http.get("/shipments")
    assert (response.status_code, response.headers["content-type"]) == (400, XML)
    assert response.content == b"<error>orderIds is required</error>"
    ids = ",".join(str(n) for n in range(1, 501))
    assert (await http.get("/shipments", params={"orderIds": ids})).status_code == 200
    response = await http.get("/shipments", params={"orderIds": ids + ",501"})
    assert (response.status_code, response.headers["content-type"]) == (400, XML)
    assert response.content == b"<error>at most 500 ids per batch, got 501</error>"


async def test_unknown_routes_and_methods_are_xml_errors(http):
    response = await http.get("/nowhere")
    assert (response.status_code, response.content) == (404, b"<error>not found</error>")
    response = await http.post("/shipments", content=b"<shipments />")
    assert (response.status_code, response.headers["content-type"]) == (405, XML)
    assert ET.fromstring(response.content).tag == "error"


async def test_health_is_json_like_every_rest_service(http):
    response = await http.get("/__admin/health")
    assert (response.status_code, response.json()) == (200, {"status": "SERVING"})


# --- recording and faults -------------------------------------------------------------


async def test_each_call_is_recorded_once(http, admin, endpoint, data):
    await admin.reset(endpoint)
    await http.get("/shipments", params={"orderIds": "1,2,3"})
    await http.get("/shipments", params={"orderIds": "4"})
    (order_id,) = order_ids_with(data, "DELIVERED", 1)
    await http.get(f"/shipments/{order_id}")
    await http.get("/__admin/health")
    batch, other, single = await admin.requests(endpoint)
    assert (batch.service, batch.call, batch.query) == (
        "shipping",
        "GET /shipments",
        "orderIds=1,2,3",
    )
    assert (other.call, other.query) == ("GET /shipments", "orderIds=4")
    assert (single.call, single.query) == ("GET /shipments/{orderId}", f"orderId={order_id}")
    assert batch.headers["user-agent"].startswith("python-httpx/")
    await admin.reset(endpoint)
    assert await admin.requests(endpoint) == []


async def test_injected_failures_are_xml(http, admin, endpoint):
    try:
        await admin.set_faults(endpoint, FaultConfig(error_rate=1.0))
        response = await http.get("/shipments", params={"orderIds": "1"})
        assert (response.status_code, response.headers["content-type"]) == (503, XML)
        assert response.content == b"<error>injected failure</error>"
    finally:
        await admin.set_faults(endpoint, FaultConfig())
    assert (await http.get("/shipments", params={"orderIds": "1"})).status_code == 200


# --- hostile modes --------------------------------------------------------------------


@pytest.mark.usefixtures("hostile_off")
async def test_billion_laughs_is_written_not_expanded(http, admin, endpoint, data):
    normal = (await http.get("/shipments", params={"orderIds": "1,2"})).content
    await admin.set_hostile(endpoint, "billion-laughs")
    (order_id,) = order_ids_with(data, "SHIPPED", 1)
    for path, params in [("/shipments", {"orderIds": "1,2"}), (f"/shipments/{order_id}", {})]:
        response = await http.get(path, params=params)
        assert (response.status_code, response.headers["content-type"]) == (200, XML)
        body = response.text
        assert "<!DOCTYPE shipments [" in body and '<!ENTITY lol "lol">' in body
        for level in range(1, 10):
            previous = "lol" if level == 1 else f"lol{level - 1}"
            assert f'<!ENTITY lol{level} "{f"&{previous};" * 10}">' in body
        assert body.endswith("<shipments>&lol9;</shipments>")
        assert len(response.content) < 2000
    await admin.set_hostile(endpoint, "off")
    assert (await http.get("/shipments", params={"orderIds": "1,2"})).content == normal


@pytest.mark.usefixtures("hostile_off")
async def test_external_entity_names_the_file_and_never_reads_it(
    http, admin, endpoint, data, tmp_path: Path
):
    canary = tmp_path / "canary.txt"
    secret = f"canary-{tmp_path.name}-do-not-leak"
    canary.write_text(secret)
    await admin.set_hostile(endpoint, "external-entity", str(canary))
    shipped = order_ids_with(data, "SHIPPED")
    answers = [
        await http.get("/shipments", params={"orderIds": ",".join(shipped)}),
        await http.get(f"/shipments/{shipped[0]}"),
    ]
    for response, ids in zip(answers, [shipped, shipped[:1]], strict=True):
        assert (response.status_code, response.headers["content-type"]) == (200, XML)
        body = response.content
        assert b"<!ENTITY" in body
        assert f'<!ENTITY xxe SYSTEM "{canary.as_uri()}">'.encode() in body
        assert body.count(b"<carrier>&xxe;</carrier>") == len(ids)
        assert secret.encode() not in body
        # The attack is real: a parser resolving external entities leaks the canary.
        assert resolve_external_entities(body) == [secret] * len(ids)
    await admin.set_hostile(endpoint, "off")
    response = await http.get(f"/shipments/{shipped[0]}")
    assert b"<!ENTITY" not in response.content
    assert ET.fromstring(response.content).get("orderId") == shipped[0]


@pytest.mark.usefixtures("hostile_off")
async def test_a_hostile_mode_survives_a_reset_and_its_answers_are_recorded(http, admin, endpoint):
    await admin.set_hostile(endpoint, "billion-laughs")
    await admin.reset(endpoint)
    response = await http.get("/shipments", params={"orderIds": "1"})
    assert b"&lol9;" in response.content
    (record,) = await admin.requests(endpoint)
    assert (record.call, record.query) == ("GET /shipments", "orderIds=1")
    hostile = await http.get("/__admin/hostile")
    assert hostile.json() == {"mode": "billion-laughs", "entityTarget": None}
    await admin.set_hostile(endpoint, "off")
    assert (await http.get("/__admin/hostile")).json() == {"mode": "off", "entityTarget": None}
    assert b"<!ENTITY" not in (await http.get("/shipments", params={"orderIds": "1"})).content


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"mode": "zip-bomb"}, "mode must be one of off, billion-laughs, external-entity"),
        ({"mode": "external-entity"}, "external-entity needs entityTarget, an absolute path"),
        (
            {"mode": "external-entity", "entityTarget": "canary.txt"},
            "external-entity needs entityTarget, an absolute path",
        ),
        (
            {"mode": "off", "entityTarget": "/etc/hostname"},
            "entityTarget is accepted only with mode external-entity",
        ),
        ({"mode": "off", "depth": 3}, "unknown hostile mode keys: depth"),
        (["off"], "hostile mode must be a JSON object"),
    ],
)
async def test_bad_hostile_modes_are_rejected_in_json(http, body, error):
    response = await http.put("/__admin/hostile", json=body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    assert (await http.get("/__admin/hostile")).json()["mode"] == "off"


async def test_admin_client_reports_a_rejected_mode(admin, endpoint):
    with pytest.raises(AdminError, match="answered 400"):
        await admin.set_hostile(endpoint, "external-entity")
    with pytest.raises(AdminError, match="gRPC"):
        await admin.set_hostile(ServiceEndpoint("grpc", "127.0.0.1:1"), "off")
