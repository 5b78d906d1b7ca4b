"""Find a local LLM server without configuration.

With ``LM_STUDIO_API_URL`` unset, ``--summarizer auto`` asks the usual local
addresses at once, within one second in total, and takes the first in the order
below (not the fastest to answer) that has a model loaded. Each probe is the LLM
client's own model listing, so what discovery accepts is exactly what a run can use.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from ..errors import ServiceUnavailable
from ..redaction import url_host
from ..settings import Settings
from .llm import LLMClient

__all__ = ["DEFAULT_PROBES", "DISCOVERY_SECONDS", "Discovery", "Probe", "ProbeResult",
           "discover_llm", "probes_for"]

DISCOVERY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Probe:
    """One address where a local OpenAI-compatible server usually listens."""

    label: str
    base_url: str


DEFAULT_PROBES: tuple[Probe, ...] = (
    Probe("LM Studio", "http://localhost:1234/v1"),
    Probe("Ollama", "http://localhost:11434/v1"),
    Probe("llama.cpp llama-server", "http://localhost:8080/v1"),
    Probe("vLLM", "http://localhost:8000/v1"),
)


@dataclass(slots=True)
class ProbeResult:
    """What one address said: a client ready to use (its model resolved), or why not."""

    probe: Probe
    client: LLMClient | None = None
    problem: str = f"no answer within {DISCOVERY_SECONDS:g} s"
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return self.client is not None


@dataclass(slots=True)
class Discovery:
    """Every probe's result, in probe order, and the chosen one (if any)."""

    results: list[ProbeResult] = field(default_factory=list)
    chosen: ProbeResult | None = None

    def describe(self) -> str:
        """``LM Studio (localhost:1234): refused; Ollama (...): no model loaded; ...``."""
        return "; ".join(f"{r.probe.label} ({url_host(r.probe.base_url)}): {r.problem}"
                         for r in self.results if r is not self.chosen)




def probes_for(settings: Settings) -> list[Probe]:
    """The addresses to try: ``llm_probe_urls`` when set, else :data:`DEFAULT_PROBES`."""
    if settings.llm_probe_urls is None:
        return list(DEFAULT_PROBES)
    known = {p.base_url.rstrip("/"): p.label for p in DEFAULT_PROBES}
    return [Probe(known.get(url.rstrip("/"), url_host(url)), url.rstrip("/"))
            for url in settings.llm_probe_urls if url.strip()]


async def _probe(settings: Settings, probe: Probe) -> ProbeResult:
    start = time.perf_counter()
    client = LLMClient(settings, probe.base_url)
    result = ProbeResult(probe)
    try:
        info = await client.resolve()
    except ServiceUnavailable as exc:
        text = str(exc)
        result.problem = ("no model loaded" if getattr(exc, "reason", "") == "model_not_loaded"
                          else "nothing listening" if "no LLM server answers" in text
                          else text)
    except Exception as exc:  # an unrelated server on a common port answers oddly
        result.problem = f"not an LLM server ({type(exc).__name__})"
    else:
        result.client = client
        result.problem = f"model {info.id}"
    finally:
        result.seconds = time.perf_counter() - start
        if result.client is None:
            await client.aclose()
    return result


async def discover_llm(settings: Settings, *,
                       deadline: float = DISCOVERY_SECONDS) -> Discovery:
    """Probe every address concurrently; stop as soon as the best possible answer is in.

    The chosen result's client stays open (its model resolved); every other is closed.
    """
    probes = probes_for(settings)
    tasks = [asyncio.ensure_future(_probe(settings, p)) for p in probes]
    results: list[ProbeResult | None] = [None] * len(tasks)
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    pending = set(tasks)
    try:
        while pending:
            remaining = end - loop.time()
            if remaining <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=remaining,
                                            return_when=asyncio.FIRST_COMPLETED)
            for i, task in enumerate(tasks):
                if results[i] is None and task.done() and not task.cancelled():
                    results[i] = task.result()
            # Done once some address has a model and every address before it has answered.
            first = next((r for r in results if r is None or r.found), None)
            if first is not None and first.found:
                break
    finally:
        for task in pending:
            task.cancel()
        for late in await asyncio.gather(*pending, return_exceptions=True):
            # Finished between the last wait and the cancel: not chosen, so closed.
            if isinstance(late, ProbeResult) and late.client is not None:
                await late.client.aclose()
    done = Discovery([r if r is not None else ProbeResult(p) for r, p in zip(results, probes,
                                                                              strict=True)])
    done.chosen = next((r for r in done.results if r.found), None)
    for result in done.results:
        if result is not done.chosen and result.client is not None:
            await result.client.aclose()
            result.client = None
    return done
