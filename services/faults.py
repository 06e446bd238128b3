"""Injected latency and failures, to exercise the gateway's resilience.

faults = FaultInjector(FaultConfig(latency_ms=50, jitter_ms=20, error_rate=0.1))
if await faults.apply():
    ...  # answer with an injected failure (HTTP 503 / gRPC UNAVAILABLE)

Which calls fail is a seeded schedule: the n-th call since the faults were set fails
when the n-th draw of ``random.Random(seed)`` is below ``error_rate``, whatever the
latency and jitter, so a test knows how many of N calls fail:

>>> schedule = FaultInjector(FaultConfig(error_rate=0.05, seed=7))
>>> [n for n in range(200) if schedule.fails_next()]
[8, 21, 56, 78, 106, 130, 134, 152, 157, 179, 180]

``hang`` holds every call until the faults are set again (then it is answered):
a service that accepts calls and never answers.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

DEFAULT_FAULT_SEED = 0
INJECTED_FAILURE_MESSAGE = "injected failure"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultConfig:
    """Latency added to every call (``latency_ms`` plus up to ``jitter_ms``) and the share
    of calls, 0 to 1, that fail. ``seed`` makes jitter and failures reproducible."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    seed: int = DEFAULT_FAULT_SEED
    hang: bool = False

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.jitter_ms < 0:
            raise ValueError("jitter_ms must not be negative")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.jitter_ms > 0 or self.error_rate > 0 or self.hang

    def to_json(self) -> dict[str, Any]:
        """The admin interface's camelCase form."""
        return {
            "latencyMs": self.latency_ms,
            "jitterMs": self.jitter_ms,
            "errorRate": self.error_rate,
            "seed": self.seed,
            "hang": self.hang,
        }

    @classmethod
    def from_json(cls, body: object) -> FaultConfig:
        """Parse the admin form; missing keys take the defaults, unknown keys are rejected."""
        if not isinstance(body, dict):
            raise ValueError("fault config must be a JSON object")
        keys = {"latencyMs": "latency_ms", "jitterMs": "jitter_ms", "errorRate": "error_rate"}
        unknown = set(body) - set(keys) - {"seed", "hang"}
        if unknown:
            raise ValueError(f"unknown fault config keys: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, attribute in keys.items():
            value = body.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
            values[attribute] = float(value)
        seed = body.get("seed", DEFAULT_FAULT_SEED)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        hang = body.get("hang", False)
        if not isinstance(hang, bool):
            raise ValueError("hang must be true or false")
        return cls(seed=seed, hang=hang, **values)


class FaultInjector:
    """Applies a ``FaultConfig``; ``configure`` swaps it at run time."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        previous: asyncio.Event | None = getattr(self, "_released", None)
        if previous is not None:
            previous.set()  # calls held by ``hang`` go on
        self._config = config
        self._released = asyncio.Event()
        # Two generators: the failure schedule does not depend on the jitter drawn.
        self._errors = random.Random(config.seed)
        self._jitter = random.Random(config.seed + 1)

    def fails_next(self) -> bool:
        """The next entry of the failure schedule."""
        rate = self._config.error_rate
        return rate > 0 and self._errors.random() < rate

    async def apply(self) -> bool:
        """Sleep the configured latency (or hang); answer whether this call must fail."""
        config = self._config
        if not config.active:
            return False
        fails = self.fails_next()  # drawn in arrival order, before any wait
        if config.hang:
            await self._released.wait()
            return False
        delay_ms = config.latency_ms + (
            self._jitter.uniform(0, config.jitter_ms) if config.jitter_ms else 0
        )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        return fails
