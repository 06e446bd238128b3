"""Prometheus metrics of one gateway (prometheus-client), prepared once.

Every series a request touches is a labelled child made the first time and kept
in a dict, so a request costs a few increments and observations, no lookups by
label. Counters the upstream layers keep anyway (breakers, cache, coalescing,
retries, bulkhead) are read when ``/metrics`` is scraped, never per request.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``switchyard serve --workers N`` sets it
to a fresh folder), values live in per-process files and any worker's
``/metrics`` answers the sum over all workers; the layers' counters, which live
in each process, carry a ``worker`` label (the process id) there.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from switchyard.errors import ErrorCode, upstream_error_code
from switchyard.telemetry.record import RequestTelemetry
from switchyard.telemetry.settings import ANONYMOUS_OPERATION, OTHER_OPERATION, MetricsSettings
from switchyard.upstream.errors import UpstreamError

CONTENT_TYPE = CONTENT_TYPE_LATEST
COST_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_RATE_LIMITED = ErrorCode.RATE_LIMITED.value
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,99}$")


def multiprocess() -> bool:
    """Whether prometheus-client keeps values in per-process files (it decides at import)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


class OperationNames:
    """Bounded label values for operation names.

    >>> names = OperationNames(max_names=1)
    >>> names.label("Orders", executed=True), names.label("Users", executed=True)
    ('Orders', 'other')
    >>> names.label(None, executed=True), names.label("Orders", executed=False)
    ('anonymous', 'Orders')
    >>> OperationNames(max_names=5, allowed=["Orders"]).label("Users", executed=True)
    'other'
    """

    def __init__(self, max_names: int, allowed: Iterable[str] = ()) -> None:
        self._max = max_names
        self._allowed = frozenset(allowed)
        self._kept: set[str] = set()

    def label(self, name: str | None, *, executed: bool) -> str:
        """``name`` when kept; a name seen first on an operation that never executed (a
        client may send any ``operationName``) is not kept."""
        if name is None:
            return ANONYMOUS_OPERATION
        if self._allowed:
            return name if name in self._allowed else OTHER_OPERATION
        if name in self._kept:
            return name
        if executed and len(self._kept) < self._max and _NAME.match(name):
            self._kept.add(name)
            return name
        return OTHER_OPERATION


def outcome_of(status: int, codes: list[str] | None) -> str:
    """``ok``, ``partial`` (200 with errors at fields), ``refused`` (4xx) or ``failed``."""
    if status == 200:
        return "partial" if codes else "ok"
    if 400 <= status < 500:
        return "refused"
    return "failed"


class GatewayMetrics:
    """The gateway's series; ``registry`` is what ``/metrics`` exposes."""

    def __init__(self, settings: MetricsSettings, layers: Callable[[], Mapping[str, Any]]) -> None:
        self.settings = settings
        self.multiprocess = multiprocess()
        own = CollectorRegistry(auto_describe=True)
        target = None if self.multiprocess else own
        if self.multiprocess:
            MultiProcessCollector(own)  # type: ignore[no-untyped-call]
        own.register(LayerCollector(layers, worker=str(os.getpid()) if self.multiprocess else None))
        self.registry = own
        self.operations = OperationNames(settings.max_operation_names, settings.operation_names)
        buckets = settings.latency_buckets
        self.requests = Counter(
            "switchyard_requests",
            "GraphQL requests answered, by operation name, operation type and outcome",
            ["operation", "type", "outcome"],
            registry=target,
        )
        self.duration = Histogram(
            "switchyard_request_duration_seconds",
            "GraphQL requests' latency, from the first byte in to the last byte out",
            ["operation", "type"],
            buckets=buckets,
            registry=target,
        )
        self.errors = Counter(
            "switchyard_graphql_errors",
            "Errors in answers, by code",
            ["code"],
            registry=target,
        )
        self.in_flight = Gauge(
            "switchyard_requests_in_flight",
            "GraphQL requests being served",
            registry=target,
            multiprocess_mode="livesum",
        )
        self.upstream_calls = Counter(
            "switchyard_upstream_calls",
            "Calls sent to upstream instances (each retry is one), health checks apart",
            ["upstream", "instance", "purpose", "outcome"],
            registry=target,
        )
        self.upstream_duration = Histogram(
            "switchyard_upstream_call_duration_seconds",
            "Upstream calls' latency, by upstream and instance",
            ["upstream", "instance"],
            buckets=buckets,
            registry=target,
        )
        self.batch_sizes = Histogram(
            "switchyard_loader_batch_size",
            "Keys per upstream call made by a loader",
            ["loader"],
            buckets=BATCH_BUCKETS,
            registry=target,
        )
        self.estimated_cost = Histogram(
            "switchyard_query_cost_estimated",
            "Estimated cost of operations (points)",
            buckets=COST_BUCKETS,
            registry=target,
        )
        self.actual_cost = Histogram(
            "switchyard_query_cost_actual",
            "Actual cost of executed operations (points)",
            buckets=COST_BUCKETS,
            registry=target,
        )
        self.budget_refusals = Counter(
            "switchyard_budget_refusals",
            "Operations refused for want of budget (RATE_LIMITED), by tier",
            ["tier"],
            registry=target,
        )
        self.limit_refusals = Counter(
            "switchyard_limit_refusals",
            "Requests refused by an operation limit, by limit",
            ["limit"],
            registry=target,
        )
        self._request_children: dict[tuple[str, str, str], Any] = {}
        self._duration_children: dict[tuple[str, str], Any] = {}
        self._error_children: dict[str, Any] = {}
        self._call_children: dict[tuple[str, str, str, str], Any] = {}
        self._call_duration_children: dict[tuple[str, str], Any] = {}
        self._batch_children: dict[str, Any] = {}

    # -- per request -------------------------------------------------------------------

    def request_finished(self, record: RequestTelemetry, status: int, seconds: float) -> None:
        operation_type = record.operation_type or "unknown"
        operation = self.operations.label(
            record.operation_name, executed=record.operation_type is not None
        )
        codes = record.error_codes
        key = (operation, operation_type, outcome_of(status, codes))
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()
        timing = self._duration_children.get(key[:2])
        if timing is None:
            timing = self._duration_children[key[:2]] = self.duration.labels(*key[:2])
        timing.observe(seconds)
        if codes:
            for code in codes:
                counter = self._error_children.get(code)
                if counter is None:
                    counter = self._error_children[code] = self.errors.labels(code)
                counter.inc()
            if _RATE_LIMITED in codes and record.context is not None:
                self.budget_refusals.labels(record.context.caller.tier).inc()
            for limit in record.limits:
                self.limit_refusals.labels(limit).inc()
        context = record.context
        if context is not None and context.cost is not None:
            measurement = context.cost
            self.estimated_cost.observe(measurement.requested)
            if measurement.actual is not None:
                self.actual_cost.observe(measurement.actual)

    def batch(self, loader: str, size: int) -> None:
        child = self._batch_children.get(loader)
        if child is None:
            child = self._batch_children[loader] = self.batch_sizes.labels(loader)
        child.observe(size)

    # -- per upstream call -------------------------------------------------------------

    def upstream_call(
        self, upstream: str, instance: str, seconds: float, error: BaseException | None
    ) -> None:
        outcome = "ok" if error is None else _error_outcome(error)
        key = (upstream, instance, "request", outcome)
        child = self._call_children.get(key)
        if child is None:
            child = self._call_children[key] = self.upstream_calls.labels(*key)
        child.inc()
        timing = self._call_duration_children.get(key[:2])
        if timing is None:
            timing = self._call_duration_children[key[:2]] = self.upstream_duration.labels(
                upstream, instance
            )
        timing.observe(seconds)

    def health_check(self, upstream: str, instance: str, healthy: bool) -> None:
        outcome = "ok" if healthy else "failed"
        self.upstream_calls.labels(upstream, instance, "health", outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _error_outcome(error: BaseException) -> str:
    if isinstance(error, UpstreamError):
        return upstream_error_code(error)[0].value
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return ErrorCode.INTERNAL_SERVER_ERROR.value


class LayerCollector(Collector):
    """The upstream layers' own counters, read at scrape time (``Upstream.stack``)."""

    def __init__(self, layers: Callable[[], Mapping[str, Any]], worker: str | None) -> None:
        self._layers = layers
        self._worker = worker

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        extra = [] if self._worker is None else ["worker"]
        worker = [] if self._worker is None else [self._worker]
        breaker = GaugeMetricFamily(
            "switchyard_upstream_breaker_state",
            "Each instance's circuit breaker: 1 for its current state",
            labels=["upstream", "instance", "state", *extra],
        )
        admitted = GaugeMetricFamily(
            "switchyard_upstream_instance_admitted",
            "1 when the balancer sends calls to the instance (neither breaker nor health "
            "checks eject it)",
            labels=["upstream", "instance", *extra],
        )
        counters = {
            name: CounterMetricFamily(f"switchyard_upstream_{name}", text, labels=labels + extra)
            for name, text, labels in (
                ("cache_hits", "Calls answered by the upstream cache", ["upstream"]),
                ("cache_misses", "Lookups the upstream cache could not answer", ["upstream"]),
                ("coalesced", "Calls that joined an identical call in flight", ["upstream"]),
                ("retries", "Calls sent again by the retry layer", ["upstream"]),
                ("bulkhead_rejected", "Calls refused by max_concurrency", ["upstream"]),
                ("breaker_rejected", "Calls an open breaker refused", ["upstream", "instance"]),
            )
        }
        for name, upstream in self._layers().items():
            stack = getattr(upstream, "stack", None)
            if stack is None:
                continue
            for index, instance in enumerate(stack.instances):
                label = f"#{index}"
                admitted.add_metric([name, label, *worker], 1.0 if instance.admitted() else 0.0)
                if instance.breaker is not None:
                    current = str(instance.breaker.state)
                    for state in ("closed", "open", "half_open"):
                        breaker.add_metric(
                            [name, label, state, *worker], 1.0 if current == state else 0.0
                        )
                    counters["breaker_rejected"].add_metric(
                        [name, label, *worker], instance.breaker.rejected
                    )
            if stack.retry is not None:
                counters["retries"].add_metric([name, *worker], stack.retry.retries)
            if stack.bulkhead is not None:
                counters["bulkhead_rejected"].add_metric([name, *worker], stack.bulkhead.rejected)
            for layer in _layers_of(stack.transport):
                kind = type(layer).__name__
                if kind == "ResponseCache":
                    counters["cache_hits"].add_metric([name, *worker], layer.hits)
                    counters["cache_misses"].add_metric([name, *worker], layer.misses)
                elif kind == "Coalescing":
                    counters["coalesced"].add_metric([name, *worker], layer.joined)
        yield breaker
        yield admitted
        yield from counters.values()


def _layers_of(transport: Any) -> Iterator[Any]:
    """The outer layers of a stack, outermost first, down to the first without ``inner``."""
    seen = 0
    while transport is not None and seen < 16:
        yield transport
        transport = getattr(transport, "inner", None)
        seen += 1
