"""The shipping service: a legacy carrier-tracking API speaking XML over HTTP.

    GET /shipments?orderIds=1,2,3 -> <shipments><shipment orderId="1"><carrier>DHL</carrier>
                                     <status>IN_TRANSIT</status><trackingNumber>JD01...
                                     </trackingNumber><estimatedDelivery>2024-03-07
                                     </estimatedDelivery></shipment>...</shipments>
    GET /shipments/{orderId}      -> <shipment orderId="1">...</shipment>

Answers are ``application/xml``, including the errors: 400 ``<error>reason</error>`` and
404 ``<error>not found</error>``. Orders without a shipment (and unknown ids) are absent
from a batch; ``estimatedDelivery`` is absent once delivered. The admin routes are the
other REST services' (JSON), plus the hostile modes the gateway's security tests use::

    PUT /__admin/hostile {"mode": "billion-laughs"}
    PUT /__admin/hostile {"mode": "external-entity", "entityTarget": "/tmp/canary.txt"}
    PUT /__admin/hostile {"mode": "off"}

While a mode is on, every ``/shipments`` answer is a 200 document carrying that attack
(see ``hostile_document``); the service only writes the bytes and never parses or
expands them. Resetting the request records keeps the mode; ``{"mode": "off"}`` ends it.

Run it with ``python -m services.run shipping --port 7006``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal, get_args

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.data import DemoData, Shipment
from services.faults import FaultConfig
from services.rest import (
    MAX_BATCH_IDS,
    RestError,
    build_rest_app,
    json_response,
    not_found,
    parse_ids,
)

SERVICE_NAME = "shipping"
XML_MEDIA_TYPE = "application/xml"
BILLION_LAUGHS_LEVELS = 9
BILLION_LAUGHS_FANOUT = 10

HostileModeName = Literal["off", "billion-laughs", "external-entity"]
HOSTILE_MODES: tuple[HostileModeName, ...] = get_args(HostileModeName)


def xml_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=XML_MEDIA_TYPE)


def xml_error(status: int, message: str) -> Response:
    """``<error>message</error>`` with ``status``; the shipping service's ``render_error``."""
    element = ET.Element("error")
    element.text = message
    return xml_response(ET.tostring(element, encoding="utf-8"), status)


def shipment_xml(shipment: Shipment) -> bytes:
    """One ``<shipment orderId="...">`` element, serialized.

    >>> shipment_xml(Shipment("7", "DHL", "DELIVERED", "JD0001", None))
    b'<shipment orderId="7"><carrier>DHL</carrier><status>DELIVERED</status><trackingNumber>JD0001</trackingNumber></shipment>'
    """  # noqa: E501
    element = ET.Element("shipment", orderId=shipment.order_id)
    ET.SubElement(element, "carrier").text = shipment.carrier
    ET.SubElement(element, "status").text = shipment.status
    ET.SubElement(element, "trackingNumber").text = shipment.tracking_number
    if shipment.estimated_delivery is not None:
        ET.SubElement(element, "estimatedDelivery").text = shipment.estimated_delivery
    serialized: bytes = ET.tostring(element, encoding="utf-8")
    return serialized


@dataclass(frozen=True, slots=True)
class HostileMode:
    """The attack every ``/shipments`` answer carries; ``HostileMode()`` is off.

    ``entity_target`` is the absolute path the external entity names (only with
    ``"external-entity"``).
    """

    mode: HostileModeName = "off"
    entity_target: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in HOSTILE_MODES:
            raise ValueError(f"mode must be one of {', '.join(HOSTILE_MODES)}")
        if self.mode == "external-entity":
            if self.entity_target is None or not PurePosixPath(self.entity_target).is_absolute():
                raise ValueError("external-entity needs entityTarget, an absolute path")
        elif self.entity_target is not None:
            raise ValueError("entityTarget is accepted only with mode external-entity")

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def to_json(self) -> dict[str, str | None]:
        return {"mode": self.mode, "entityTarget": self.entity_target}

    @classmethod
    def from_json(cls, body: object) -> HostileMode:
        """Parse ``{"mode": ..., "entityTarget": ...}``; unknown keys are rejected.

        >>> HostileMode.from_json({"mode": "billion-laughs"})
        HostileMode(mode='billion-laughs', entity_target=None)
        """
        if not isinstance(body, dict):
            raise ValueError("hostile mode must be a JSON object")
        unknown = set(body) - {"mode", "entityTarget"}
        if unknown:
            raise ValueError(f"unknown hostile mode keys: {', '.join(sorted(unknown))}")
        mode, target = body.get("mode"), body.get("entityTarget")
        if mode not in HOSTILE_MODES:
            raise ValueError(f"mode must be one of {', '.join(HOSTILE_MODES)}")
        if target is not None and not isinstance(target, str):
            raise ValueError("entityTarget must be a string")
        return cls(mode, target)


def hostile_document(hostile: HostileMode, order_ids: Sequence[str]) -> bytes:
    """The attack document of ``hostile`` in place of the shipments of ``order_ids``.

    Billion laughs: the classic ``lol1`` to ``lol9``, each ten times the previous, with
    ``<shipments>&lol9;</shipments>`` (10^9 "lol"s once expanded). External entity:
    ``<!ENTITY xxe SYSTEM "file:///...">`` and one well-formed shipment per order id whose
    carrier is ``&xxe;``, so a parser that resolves it puts the file into the answer.
    """
    if hostile.mode == "billion-laughs":
        entities = ['<!ENTITY lol "lol">']
        for level in range(1, BILLION_LAUGHS_LEVELS + 1):
            previous = "lol" if level == 1 else f"lol{level - 1}"
            entities.append(f'<!ENTITY lol{level} "{f"&{previous};" * BILLION_LAUGHS_FANOUT}">')
        dtd = "\n  ".join(entities)
        return (
            f'<?xml version="1.0"?>\n<!DOCTYPE shipments [\n  {dtd}\n]>\n'
            f"<shipments>&lol{BILLION_LAUGHS_LEVELS};</shipments>"
        ).encode()
    assert hostile.mode == "external-entity" and hostile.entity_target is not None
    # as_uri percent-encodes, so no character of the path can end the SYSTEM literal.
    uri = PurePosixPath(hostile.entity_target).as_uri()
    shipments = "".join(
        f'<shipment orderId="{order_id}"><carrier>&xxe;</carrier><status>IN_TRANSIT</status>'
        f"<trackingNumber>JD0000000000000000</trackingNumber>"
        f"<estimatedDelivery>2026-12-03</estimatedDelivery></shipment>"
        for order_id in order_ids
    )
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE shipments [<!ENTITY xxe SYSTEM "{uri}">]>\n'
        f"<shipments>{shipments}</shipments>"
    ).encode()


class HostileSwitch:
    """The service's current ``HostileMode``, set through ``PUT /__admin/hostile``.

    Kept apart from the request recorder, so that resetting the records leaves it on.
    """

    def __init__(self) -> None:
        self.mode = HostileMode()

    def route(self) -> BaseRoute:
        """``GET``/``PUT /__admin/hostile``: answers the mode in force, JSON."""

        async def hostile(request: Request) -> Response:
            if request.method == "PUT":
                try:
                    self.mode = HostileMode.from_json(orjson.loads(await request.body()))
                except (ValueError, TypeError) as exc:
                    raise RestError(400, str(exc)) from None
            return json_response(self.mode.to_json())

        return Route("/__admin/hostile", hostile, methods=["GET", "PUT"])

    def answer(self, order_ids: Sequence[str]) -> Response | None:
        """The attack in place of the shipments of ``order_ids``; ``None`` when off."""
        if not self.mode.active:
            return None
        # Only decimal ids go into the hand-written document; the cap keeps it bounded.
        safe = list(dict.fromkeys(i for i in order_ids if i.isdecimal()))[:MAX_BATCH_IDS]
        return xml_response(hostile_document(self.mode, safe or ["1"]))


def create_app(data: DemoData, *, faults: FaultConfig | None = None) -> Starlette:
    """The shipping app over ``data``, every shipment serialized up front."""
    serialized = {s.order_id: shipment_xml(s) for s in data.shipments}
    hostile = HostileSwitch()

    async def list_shipments(request: Request) -> Response:
        raw = request.query_params.get("orderIds", "")
        attack = hostile.answer([part.strip() for part in raw.split(",")])
        if attack is not None:
            return attack
        if "orderIds" not in request.query_params:
            raise RestError(400, "orderIds is required")
        order_ids = parse_ids(request, "orderIds")
        found = b"".join(serialized[i] for i in order_ids if i in serialized)
        return xml_response(b"<shipments>" + found + b"</shipments>")

    async def get_shipment(request: Request) -> Response:
        order_id = request.path_params["orderId"]
        attack = hostile.answer([order_id])
        if attack is not None:
            return attack
        shipment = serialized.get(order_id)
        if shipment is None:
            raise not_found()
        return xml_response(shipment)

    routes = [Route("/shipments", list_shipments), Route("/shipments/{orderId}", get_shipment)]
    return build_rest_app(
        SERVICE_NAME, routes, faults=faults, admin=[hostile.route()], render_error=xml_error
    )
