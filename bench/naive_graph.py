"""The demo graph without batching: one upstream call per parent (the benchmark's ``naive``).

    switchyard serve --graph bench.naive_graph:graph

Every edge of ``schema.types`` gets ``max_batch = 1`` before the gateway is built from
this graph, so each parent's key is its own call (a key asked twice in one request is
still answered once: the per-request loaders remember it). bench/run.py checks the
calls the services observed.
"""

from __future__ import annotations

import dataclasses

from schema import graph as demo_graph
from schema import types
from switchyard import BatchEdge, PagedEdge

NAIVE_BATCH = 1


def unbatch() -> list[str]:
    """Set ``max_batch = 1`` on every edge of ``schema.types``; their names."""
    names = []
    for value in vars(types).values():
        if isinstance(value, BatchEdge | PagedEdge):
            value.max_batch = NAIVE_BATCH
            names.append(value.name)
    return names


UNBATCHED = unbatch()
graph = dataclasses.replace(demo_graph)
