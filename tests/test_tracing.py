"""Traces: one operation span, a child span per upstream call (with its batch size), and
the trace context each demo service received, REST and gRPC alike, from its records."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from tests.conftest import (
    DEMO_GATEWAYS,
    SERVICE_HEADERS,
    Backends,
    gateway_settings,
    open_gateway,
    query,
)

THREE_SERVICES = """
query ProductPage {
  product(id: "1") {
    name
    stock { available }
    reviews(first: 2) { edges { node { rating } } }
  }
}
"""
CALLED = {"catalog", "inventory", "reviews"}
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_PARENT = "b7ad6b7169203331"


def traced_config(platform: DemoPlatform, **tracing: Any) -> Any:
    return validate_config(
        gateway_settings(
            platform.addresses,
            tracing={"enabled": True, "exporter": "memory", "sampling_ratio": 1.0, **tracing},
            cost={"mode": "enforce"},
        )
    )


def spans_of_last_gateway() -> list[ReadableSpan]:
    return DEMO_GATEWAYS[-1].telemetry.tracing.finished()  # type: ignore[union-attr]


async def test_one_operation_span_a_child_span_per_call_and_the_services_got_its_context(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with open_gateway(traced_config(platform)) as client:
        response = await query(client, THREE_SERVICES)
        assert response.status_code == 200 and "errors" not in response.json()
        spans = spans_of_last_gateway()

    operations = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(operations) == 1
    operation = operations[0]
    assert operation.name == "query ProductPage"
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "ProductPage"
    trace_id = operation.context.trace_id
    assert all(s.context.trace_id == trace_id for s in spans)

    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == operation.context.span_id
    ]
    stages = [event.name for event in operation.events]
    assert stages == ["parse", "validate", "cost", "execute"]
    for event in operation.events:
        assert event.attributes is not None
        assert isinstance(event.attributes["duration_ms"], float)
    calls = [s for s in children if s.kind is SpanKind.CLIENT]
    assert len(calls) == 3
    by_service = {str(s.attributes["switchyard.upstream"]): s for s in calls}  # type: ignore[index]
    assert set(by_service) == CALLED
    for span in calls:
        assert span.attributes is not None
        assert span.attributes["switchyard.batch.size"] == 1
        assert span.attributes["switchyard.batch.loader"]
    assert len(spans) == 1 + 3  # no span per stage, none per resolver

    for service in CALLED:
        records = await backends.records(service)
        assert len(records) == 1, service
        version, received_trace, parent, flags = records[0].headers["traceparent"].split("-")
        assert version == "00" and int(flags, 16) & 1 == 1  # sampled (02: random ids)
        assert int(received_trace, 16) == trace_id, service
        assert int(parent, 16) == by_service[service].context.span_id, service


async def test_a_clients_traceparent_is_continued_only_when_configured(
    platform: DemoPlatform, backends: Backends
) -> None:
    incoming = {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01", "tracestate": "vendor=x"}
    for accept in (False, True):
        async with open_gateway(traced_config(platform, accept_incoming=accept)) as client:
            headers = {**incoming, **SERVICE_HEADERS}
            response = await query(client, 'query P { product(id: "1") { name } }', headers=headers)
            assert response.status_code == 200
            spans = spans_of_last_gateway()
        (operation,) = [s for s in spans if s.kind is SpanKind.SERVER]
        continued = f"{operation.context.trace_id:032x}" == CLIENT_TRACE
        assert continued is accept
        if accept:
            assert operation.parent is not None
            assert f"{operation.parent.span_id:016x}" == CLIENT_PARENT
        records = await backends.records("catalog")
        received = records[-1].headers["traceparent"]
        assert received.split("-")[1] == f"{operation.context.trace_id:032x}"
        assert ("tracestate" in records[-1].headers) is accept


async def test_a_sampling_ratio_of_zero_keeps_no_span_but_still_propagates(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with open_gateway(traced_config(platform, sampling_ratio=0.0)) as client:
        response = await query(client, 'query P { product(id: "1") { name } }')
        assert response.status_code == 200
        assert spans_of_last_gateway() == []
    (record,) = await backends.records("catalog")
    flags = record.headers["traceparent"].rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # not sampled: the services learn it, and the trace


async def test_tracing_is_off_by_default_and_then_nothing_is_sent_upstream(
    gateway: Any, backends: Backends
) -> None:
    response = await query(gateway, 'query P { product(id: "1") { name } }')
    assert response.status_code == 200
    (record,) = await backends.records("catalog")
    assert "traceparent" not in record.headers


async def test_the_in_memory_exporter_keeps_only_the_most_recent_spans(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with open_gateway(traced_config(platform, memory_max_spans=3)) as client:
        for _ in range(2):
            response = await query(client, THREE_SERVICES)
            assert response.status_code == 200 and "errors" not in response.json()
        spans = spans_of_last_gateway()

    # Of 2 x (3 calls, then the operation that made them): the second's last two calls and it.
    assert len(spans) == 3
    *calls, operation = spans
    assert operation.kind is SpanKind.SERVER and operation.name == "query ProductPage"
    assert [event.name for event in operation.events] == ["parse", "validate", "cost", "execute"]
    for call in calls:
        assert call.kind is SpanKind.CLIENT
        assert call.parent is not None and call.parent.span_id == operation.context.span_id


def test_a_call_that_ends_after_its_request_was_written_is_still_its_child() -> None:
    from switchyard.telemetry.settings import TracingSettings
    from switchyard.telemetry.tracing import CURRENT_TRACE, Tracing

    tracing = Tracing(TracingSettings(enabled=True, exporter="memory", sampling_ratio=1.0))
    request = tracing.start_request({"headers": []}, {"url.path": "/graphql"})
    on_time = tracing.start_call("catalog", "#0", "products", ("products", 2))
    late = tracing.start_call("reviews", "#0", "reviews", None)
    tracing.end_call(on_time, None)
    tracing.end_request(request, {"graphql.operation.type": "query"}, failed=False)
    assert CURRENT_TRACE.get() is None
    tracing.end_call(late, TimeoutError())

    first_call, operation, late_call = tracing.finished()
    assert operation.name == "query anonymous" and operation.kind is SpanKind.SERVER
    assert operation.context.span_id == request.context.span_id
    for call, started in ((first_call, on_time), (late_call, late)):
        assert call.parent is not None and call.parent.span_id == operation.context.span_id
        assert call.context.trace_id == operation.context.trace_id
        assert call.context.span_id == started.context.span_id  # the id its upstream was sent
        assert f"{call.context.span_id:016x}" in started.headers()["traceparent"]
    assert first_call.attributes is not None and first_call.attributes["switchyard.batch.size"] == 2
    assert late_call.status.status_code.name == "ERROR"
