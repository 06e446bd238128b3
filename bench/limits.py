"""How long the worst documents the default limits admit stall the event loop.

    python -m bench.limits [--rounds 20]

Starts a gateway (the demo graph, its upstreams nowhere: only parsing, the
limits and validation run) and, for each document below, sends it ``rounds``
times (each a distinct text, so no cache helps) while a probe asks
``/healthz`` every few milliseconds; it prints the longest wait of the probe,
and, measured in this process for reference, the time to parse, check and
validate the document. The limits' target: at most 50 ms. Last, it sends
``--documents`` distinct documents near the byte limit and prints the
gateway's RSS before and after: the document cache is bounded by bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import httpx
from graphql import parse, specified_rules, validate

from bench.harness import gateway_process, gateway_toml
from schema import graph
from services.launcher import find_free_ports
from services.registry import SERVICE_NAMES
from switchyard.documents import VALIDATION_MAX_ERRORS
from switchyard.limits import LimitSettings, OperationLimits

LIMITS = LimitSettings()
PROBE_INTERVAL_S = 0.002


def nested(levels: int, repeats: int) -> str:
    """``repeats`` fields of one name (the most the limits allow) at every level."""
    inner = "id"
    for _ in range(levels):
        inner = " ".join(["orders { edges { node { " + inner + " } } }"] * 1)
    return "{ users { edges { node { " + " ".join([inner] * repeats) + " } } } }"


def repeated_with_subtrees(repeats: int, width: int) -> str:
    fields = " ".join(f"f{i}" for i in range(width))
    block = f"reviews {{ edges {{ node {{ {fields} }} }} }}"
    return "{ products { edges { node { " + " ".join([block] * repeats) + " } } } }"


def padded_with_comments(tokens: int) -> str:
    return "{ __typename " + "#c\n" * (tokens - 3) + "}"


def wide_unknown_fields(width: int, sets: int) -> str:
    fields = " ".join(f"f{i}" for i in range(width))
    parts = [f"a{k}: users {{ edges {{ node {{ {fields} }} }} }}" for k in range(sets)]
    return "{ " + " ".join(parts) + " }"


def fragments_of_repeats(count: int, repeats: int) -> str:
    block = " ".join(["orders { edges { node { id status } } }"] * repeats)
    definitions = " ".join(f"fragment F{k} on User {{ {block} }}" for k in range(count))
    spreads = " ".join(f"...F{k}" for k in range(count))
    return "{ users { edges { node { " + spreads + " } } } } " + definitions


DOCUMENTS: dict[str, Callable[[], str]] = {
    "5 repeated fields, 3 levels": lambda: nested(3, LIMITS.max_repeated_fields),
    "5 repeated reviews of 44 fields": lambda: repeated_with_subtrees(
        LIMITS.max_repeated_fields, LIMITS.max_selections - LIMITS.max_repeated_fields - 1
    ),
    "2,000 tokens of comments": lambda: padded_with_comments(LIMITS.max_tokens - 10),
    "19 sets of 49 unknown fields": lambda: wide_unknown_fields(
        LIMITS.max_selections - 1, LIMITS.max_root_fields - 1
    ),
    "5 fragments spread at one level": lambda: fragments_of_repeats(5, 1),
}


def in_process_ms(document: str) -> tuple[float, int, str]:
    """Parse, limits and validation here, as the gateway runs them; and the verdict."""
    limits = OperationLimits(LIMITS)
    started = time.perf_counter()
    try:
        parsed = parse(document, max_tokens=LIMITS.max_tokens)
    except Exception as error:  # the token limit
        return (time.perf_counter() - started) * 1000, 0, str(error)[:40]
    refusals = limits.check(parsed)
    errors = refusals or validate(
        graph.schema._schema,
        parsed,
        specified_rules,
        max_errors=VALIDATION_MAX_ERRORS,
        hide_suggestions=True,
    )
    elapsed = (time.perf_counter() - started) * 1000
    verdict = "refused: " + refusals[0].message[:30] if refusals else f"{len(errors)} errors"
    return elapsed, len(document), verdict


async def longest_stall(url: str, document: str, rounds: int) -> float:
    """The longest /healthz wait while ``rounds`` variants of ``document`` are served."""
    stalls: list[float] = []
    done = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                stalls.append(time.perf_counter() - started)
                await asyncio.sleep(PROBE_INTERVAL_S)

        prober = asyncio.create_task(probe())
        for round_ in range(rounds):
            # A distinct text each time (the alias changes), so the document cache never helps.
            variant = document.replace("{ ", f"{{ v{round_}: __typename ", 1)
            await client.post("/graphql", json={"query": variant})
        done.set()
        await prober
    return max(stalls) * 1000


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def memory(url: str, pid: int, documents: int) -> None:
    """RSS before and after ``documents`` distinct documents near ``max_document_bytes``."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        before = rss_kib(pid)
        for i in range(documents):
            padding = f"{i:08d}" * ((LIMITS.max_document_bytes - 200) // 8)
            document = f'{{ users(first: 1, after: "{padding}") {{ totalCount }} }}'
            await client.post("/graphql", json={"query": document})
        after = rss_kib(pid)
    print(
        f"{documents} distinct documents of {len(document)} bytes: "
        f"RSS {before // 1024} MiB -> {after // 1024} MiB"
    )


async def main(rounds: int, documents: int) -> None:
    (port,) = find_free_ports(1)
    nowhere = {
        name: ["127.0.0.1:9" if name in {"catalog", "inventory"} else "http://127.0.0.1:9"]
        for name in SERVICE_NAMES
    }
    # A production gateway (debug off): the one that must stand hostile documents.
    with gateway_process(gateway_toml(nowhere, port, debug=False), port) as gateway:
        print(f"{'document':<40} {'bytes':>7} {'in process':>11} {'longest /healthz wait':>22}")
        for name, make in DOCUMENTS.items():
            document = make()
            elapsed, size, verdict = in_process_ms(document)
            stall = await longest_stall(gateway.url, document, rounds)
            print(f"{name:<40} {size:>7} {elapsed:>8.1f} ms {stall:>19.1f} ms   {verdict}")
        await memory(gateway.url, gateway.pid, documents)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--documents", type=int, default=100, help="for the memory check")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.documents))
