"""Client for the shipping service: a legacy XML-over-HTTP API, and the ``xml`` upstream kind.

    [upstreams.shipping]
    kind = "xml"
    instances = ["http://127.0.0.1:7006"]

Answers are parsed with defusedxml: a document with a DTD, an entity or an
external reference is refused (billion laughs and XXE never reach a parser
that would expand them) and becomes an ``UpstreamProtocolError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from switchyard import Service
from switchyard.upstream import (
    CallScope,
    HttpTransport,
    RestRequest,
    Upstream,
    UpstreamProtocolError,
)


class XmlTransport(HttpTransport):
    """HTTP answering XML: a 2xx body becomes an ``Element``."""

    accept = "application/xml"

    def decode(self, operation: str, response: httpx.Response) -> Any:
        try:
            return fromstring(
                response.content, forbid_dtd=True, forbid_entities=True, forbid_external=True
            )
        except DefusedXmlException as exc:
            # The type only: the document may carry what an attacker wants echoed.
            raise UpstreamProtocolError(
                "shipping", operation, f"refused XML ({type(exc).__name__})"
            ) from None
        except ParseError as exc:
            raise UpstreamProtocolError("shipping", operation, "answer is not XML") from exc


SHIPPING = Service("shipping", kinds={"xml": XmlTransport.for_instance})


@dataclass(slots=True)
class ShipmentRecord:
    carrier: str
    status: str
    tracking_number: str
    estimated_delivery: str | None

    @classmethod
    def from_element(cls, element: Element) -> ShipmentRecord:
        def text(tag: str) -> str | None:
            child = element.find(tag)
            return None if child is None else (child.text or "")

        carrier, status, tracking = text("carrier"), text("status"), text("trackingNumber")
        if carrier is None or status is None or tracking is None:
            raise ValueError("a shipment lacks carrier, status or trackingNumber")
        return cls(carrier, status, tracking, text("estimatedDelivery"))


async def shipments_of_orders(
    upstream: Upstream, order_ids: list[str], scope: CallScope
) -> dict[str, ShipmentRecord]:
    """Shipments by order id; orders not shipped yet are absent."""
    request = RestRequest("/shipments", {"orderIds": ",".join(order_ids)})
    root: Element = await upstream.call(request, scope)
    if root.tag != "shipments":
        raise UpstreamProtocolError("shipping", request.operation, f"unexpected <{root.tag}>")
    try:
        return {
            element.attrib["orderId"]: ShipmentRecord.from_element(element)
            for element in root.iter("shipment")
        }
    except (KeyError, ValueError) as exc:
        raise UpstreamProtocolError("shipping", request.operation, str(exc)) from None
