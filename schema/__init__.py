"""The demo platform's graph: what ``[graph] module = "schema:graph"`` serves.

switchyard schema --graph schema:graph    # prints its SDL
"""

from __future__ import annotations

import strawberry

from schema.query import ROOT_SERVICES, Mutation, Query
from switchyard import Graph

graph = Graph(
    schema=strawberry.Schema(query=Query, mutation=Mutation),
    services=ROOT_SERVICES,
)
