"""The per-request debug record: what a query cost the backends (``extensions.upstreams``)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEBUG_HEADER = "x-switchyard-debug"
COST_HEADER = "x-switchyard-cost"
"""``X-Switchyard-Cost: explain`` adds the field-by-field estimate (debug mode only)."""


@dataclass(slots=True)
class UpstreamUsage:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class DebugRecord:
    """Counts calls and time per upstream; it is the request's ``CallObserver``."""

    usage: dict[str, UpstreamUsage] = field(default_factory=dict)

    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None:
        usage = self.usage.get(upstream)
        if usage is None:
            usage = self.usage[upstream] = UpstreamUsage()
        usage.calls += 1
        usage.seconds += seconds
        if error is not None:
            usage.errors += 1

    def as_extension(self) -> dict[str, dict[str, float | int]]:
        """``{"accounts": {"calls": 2, "errors": 0, "timeMs": 3.1}, ...}``, sorted by name."""
        return {
            name: {
                "calls": usage.calls,
                "errors": usage.errors,
                "timeMs": round(usage.seconds * 1000, 2),
            }
            for name, usage in sorted(self.usage.items())
        }
