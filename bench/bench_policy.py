"""What the network policy costs the fetch stage (issue 15). Prints figures; asserts nothing.

    python bench/bench_policy.py [--rounds 3] [--n 2000]

Runs core part (a) — tiny pages with 100 ms latency, concurrency 32 — and part (b)'s
real corpus pages, alternately with the policy's transport (every connection resolved
and checked) and with httpx's plain transport, in the same process, so both share the
machine's load. Reports throughput and the CPU time the run spent (this process and
its extraction pool), which load disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_core
import httpx

import bookmark_enrich.stages.fetch as fetch_module
from bookmark_enrich.services import netpolicy
from tests.servers import latency as latency_server
from tests.servers.pages import serve_in_process

REAL_TRANSPORT = fetch_module.policy_transport
CONNECTIONS = [0]
_connect = netpolicy._PolicyBackend.connect_tcp


async def counted_connect(self: Any, *args: Any, **kw: Any) -> Any:
    CONNECTIONS[0] += 1
    return await _connect(self, *args, **kw)


netpolicy._PolicyBackend.connect_tcp = counted_connect  # type: ignore[method-assign]


def plain_transport(policy: Any, *, limits: httpx.Limits,
                    resolver: Any = None) -> httpx.AsyncHTTPTransport:
    """httpx's own transport: what fetching cost before the policy."""
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(urls: list[str], tmp: Path, policy: bool, **kw: Any) -> tuple[float, float]:
    """(bookmarks per second, CPU ms per bookmark) for one run."""
    fetch_module.policy_transport = REAL_TRANSPORT if policy else plain_transport  # type: ignore[assignment]
    before = cpu_seconds()
    elapsed = bench_core.run_urls(urls, bench_core.core_settings(tmp, **kw))
    # Pool workers' CPU is only counted once they exit; the pool outlives a run,
    # so this is the coordinator's CPU: where the policy's work happens.
    spent = cpu_seconds() - before
    return len(urls) / elapsed, spent * 1000 / len(urls)


def compare(label: str, urls: list[str], tmp: Path, rounds: int, **kw: Any) -> None:
    CONNECTIONS[0] = 0
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        # Alternate which goes first so drift in the machine's load cancels out.
        order = (True, False) if r % 2 == 0 else (False, True)
        for policy in order:
            rate, cpu = measure(urls, tmp / f"{label}-{r}-{policy}", policy, **kw)
            rates[policy].append(rate)
            cpus[policy].append(cpu)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    con, coff = statistics.median(cpus[True]), statistics.median(cpus[False])
    print(f"{label}: with policy {on:.1f}/s ({con:.3f} ms CPU/bookmark), plain transport "
          f"{off:.1f}/s ({coff:.3f} ms CPU/bookmark); throughput change "
          f"{(on - off) / off * 100:+.2f} %, CPU change {(con - coff) / coff * 100:+.2f} % "
          f"(medians of {rounds}; all with policy: {[round(x, 1) for x in rates[True]]}, "
          f"plain: {[round(x, 1) for x in rates[False]]}); "
          f"{CONNECTIONS[0] / rounds:.0f} checked connections a run")


def check_cost(rounds: int = 20000) -> float:
    """Microseconds one connection's policy check costs (resolve a literal, classify)."""
    import asyncio
    import time

    from bookmark_enrich.services.netpolicy import NetworkPolicy, system_resolver

    policy = NetworkPolicy.from_settings(False, ["127.0.0.0/8", "::1"])

    async def loop() -> float:
        start = time.process_time()
        for _ in range(rounds):
            await policy.check("127.0.0.1", 80, system_resolver)
            await policy.check("localhost", 80, system_resolver)
        return (time.process_time() - start) / (2 * rounds) * 1e6

    return asyncio.run(loop())


def with_server(start: Callable[[], Any], body: Callable[[str], None]) -> None:
    server = start()
    try:
        body(server.base)
    finally:
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--part", default="a,b")
    args = parser.parse_args()
    parts = set(args.part.split(","))
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)

        def part_a(base: str) -> None:
            bench_core.run_urls([f"{base}/raw/tiny?warm"], bench_core.core_settings(tmp / "w"))
            urls = [f"{base}/raw/tiny?i={i}" for i in range(args.n)]
            compare("(a) tiny pages, 100 ms, concurrency 32", urls, tmp, args.rounds,
                    concurrency=32, per_host=32)

        def part_b(base: str) -> None:
            names = bench_core.corpus_names()
            urls = [f"{base}/corpus/{n}" for n in names]
            bench_core.run_urls([f"{base}/corpus/{names[0]}?warm"],
                                bench_core.core_settings(tmp / "w2"))
            compare("(b) 181 corpus pages, 100 ms", urls, tmp, args.rounds,
                    concurrency=32, per_host=32)

        print(f"one connection's check (literal or resolved name): "
              f"{check_cost():.1f} us CPU")
        if "a" in parts:
            with_server(lambda: latency_server.serve(0.1), part_a)
        if "b" in parts:
            with_server(lambda: serve_in_process(0.1), part_b)


if __name__ == "__main__":
    main()
