"""What the gateway tells operators: Prometheus metrics, OpenTelemetry traces, an access log.

    settings      ``[metrics]``, ``[tracing]``, ``[access_log]``
    gateway       ``Telemetry``: what a gateway's config turned on, the units it adds
    middleware    the HTTP edge's unit: times, traces and reports each GraphQL request
    extension     names the operation; with tracing, spans its stages
    record        ``RequestTelemetry``, one request's record; ``BATCH``, a loader's batch
    metrics       the series (prometheus-client), multiprocess-safe
    instruments   the layer under each instance's transport: calls counted, spanned
    tracing       the tracer, its sampler and exporter; trace context for upstreams
    access_log    one line per request, JSON or console
    endpoint      ``/metrics``, on the gateway's port or its own

Nothing is imported here: ``switchyard.config`` reads ``settings`` without the rest.
"""
