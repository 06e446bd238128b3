"""Log set-up: one line per record, with the request id and stage when a record carries them."""

from __future__ import annotations

import logging
import sys

_CONTEXT_FIELDS = ("request_id", "stage", "upstream")


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{name}={getattr(record, name)}" for name in _CONTEXT_FIELDS if hasattr(record, name)
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("switchyard")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # The access log's lines are whole already (JSON or console): written as they are.
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(logging.Formatter("%(message)s"))
    access_logger = logging.getLogger("switchyard.access")
    access_logger.handlers[:] = [access]
    access_logger.setLevel(logging.INFO)  # its switch is [access_log] enabled, not log_level
    access_logger.propagate = False
