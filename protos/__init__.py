"""Protocol buffers of the demo platform and their generated Python modules.

Regenerate after editing a .proto file (``tests/test_protos.py`` fails while they are stale)::

    python -m protos.generate
"""
