"""The demo services behind ``switchyard demo``, the tests and the benchmarks.

Six services implement the fixed wire contract (docs/demo-contract.md) over one seeded
dataset (``services.data``): accounts, orders and reviews over REST (Starlette),
catalog and inventory over gRPC (grpc.aio), shipping as legacy XML over HTTP. Each runs
in its own process (``services.run``), started and stopped by
``services.launcher.DemoPlatform``; every service records the requests it serves and can
inject latency and failures, both reachable through ``services.admin.AdminClient``.
"""
