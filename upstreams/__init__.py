"""The demo graph's service clients (docs/demo-contract.md): one module per service.

Each module names its ``Service`` and offers functions of an opened
``Upstream``; none knows of GraphQL. A client for another service is one more
module of the same shape, and its ``[upstreams.NAME]`` table in the config.
"""

MAX_BATCH = 500
"""The contract's limit on ids per batch call; edges never ask for more."""
