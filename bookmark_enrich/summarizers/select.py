"""Which summarizer a run uses, and why.

``--summarizer`` (``BOOKMARK_ENRICH_SUMMARIZER``):

- ``builtin``: the offline summarizer, always.
- ``llm``/``auto`` with ``LM_STUDIO_API_URL`` set: that server. Down, or no model →
  ServiceUnavailable (exit 3). A user who asked for their LLM never silently gets the
  built-in summary instead.
- ``llm``/``auto`` without it: the local servers are probed (LM Studio, Ollama,
  llama-server, vLLM; :mod:`services.discovery`) and the first with a loaded model is
  used. Nothing found: ``auto`` falls back to the built-in summarizer, ``llm`` exits 3.

The choice is announced through ``notify`` (the run's first stderr line) and
described for ``doctor`` by :func:`describe_choice`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..redaction import url_host
from ..services.discovery import Discovery, ProbeResult, discover_llm
from ..services.health import Check, CheckStatus
from ..services.llm import LLMClient, LLMUnavailable
from ..settings import Settings
from .base import Summarizer
from .builtin import BuiltinSummarizer
from .llm import LLMSummarizer

__all__ = ["choose_summarizer", "describe_choice"]

_FALLBACK_HINT = "start LM Studio's local server (or Ollama), set LM_STUDIO_API_URL, or use " \
    "--summarizer builtin"


def _where(result: ProbeResult) -> str:
    """``LM Studio (localhost:1234)``, or just ``host:port`` for an address of your own."""
    host = url_host(result.probe.base_url)
    return host if result.probe.label == host else f"{result.probe.label} ({host})"


def _nothing_found(found: Discovery) -> str:
    if not found.results:
        return "nowhere to look: BOOKMARK_ENRICH_LLM_PROBE_URLS=[]"
    quiet = [r for r in found.results if r.problem == "nothing listening"]
    parts = []
    if quiet:
        parts.append("nothing listening at " + ", ".join(url_host(r.probe.base_url)
                                                         for r in quiet))
    parts.extend(f"{_where(r)}: {r.problem}" for r in found.results if r not in quiet)
    return "; ".join(parts)


async def choose_summarizer(settings: Settings,
                            notify: Callable[[str], None] | None = None) -> Summarizer:
    """The summarizer for this run, checked and ready (its preflight has passed).

    Raises ServiceUnavailable (exit 3) with an actionable line when the chosen back
    end cannot work. ``notify`` receives one line for stderr saying what was chosen.
    """

    def say(message: str) -> None:
        if notify is not None:
            notify(message)

    if settings.summarizer == "builtin":
        say("summarizer: built-in (--summarizer builtin)")
        return BuiltinSummarizer(settings)
    if settings.lm_studio_api_url:
        summarizer = LLMSummarizer(settings, base_url=settings.lm_studio_api_url, notify=notify)
        try:
            await summarizer.preflight()
        except BaseException:
            await summarizer.aclose()
            raise
        say(f"summarizer: LLM {summarizer.model} at {url_host(settings.lm_studio_api_url)} "
            "(LM_STUDIO_API_URL)")
        say(summarizer.concurrency_line())
        return summarizer
    found = await discover_llm(settings)
    if found.chosen is not None and found.chosen.client is not None:
        client = found.chosen.client
        say(f"summarizer: LLM {client.model} found at {_where(found.chosen)}")
        chosen = LLMSummarizer(settings, client=client, notify=notify)
        say(chosen.concurrency_line())
        return chosen
    if settings.summarizer == "llm":
        raise LLMUnavailable("llm_unreachable",
                             f"--summarizer llm: no local LLM server found "
                             f"({_nothing_found(found)}); {_FALLBACK_HINT}")
    say(f"summarizer: built-in, offline (no local LLM server found: "
        f"{_nothing_found(found)}; set LM_STUDIO_API_URL to use one)")
    return BuiltinSummarizer(settings)


async def describe_choice(settings: Settings,
                          options: dict[str, Any] | None = None) -> list[Check]:
    """For ``doctor`` and ``config show``: which summarizer a run would use, and why.

    ``data`` holds ``summarizer`` (``llm``/``builtin``/None), ``model``, ``base_url``
    and ``why``.
    """
    def check(status: CheckStatus, detail: str, summarizer: str | None, why: str, *,
              required: bool = True, model: str | None = None,
              base_url: str | None = None) -> list[Check]:
        data = {"summarizer": summarizer, "model": model,
                "base_url": url_host(base_url) if base_url else None, "why": why}
        return [Check("summarizer", status, detail, required=required, data=data)]

    if not settings.enable_ai_summarization:
        return check("skip", "summaries off (ENABLE_AI_SUMMARIZATION=false or --no-summary)",
                     None, "disabled", required=False)
    if settings.summarizer == "builtin":
        return check("ok", "built-in offline summarizer (--summarizer builtin)", "builtin",
                     "chosen")
    if settings.lm_studio_api_url:
        client = LLMClient(settings, settings.lm_studio_api_url)
        try:
            info = await client.resolve()
        except LLMUnavailable as exc:
            return check("fail", f"LLM at LM_STUDIO_API_URL is not usable, a run exits 3: {exc}",
                         "llm", "configured_down", base_url=settings.lm_studio_api_url)
        finally:
            await client.aclose()
        return check("ok", f"LLM {info.id} at {url_host(client.base_url)} (LM_STUDIO_API_URL)",
                     "llm", "configured", model=info.id, base_url=client.base_url)
    found = await discover_llm(settings)
    if found.chosen is not None and found.chosen.client is not None:
        client = found.chosen.client
        try:
            return check("ok", f"LLM {client.model} found at {_where(found.chosen)}",
                         "llm", "discovered",
                         model=client.model, base_url=client.base_url)
        finally:
            await client.aclose()
    if settings.summarizer == "llm":
        return check("fail", f"--summarizer llm but no local LLM server found "
                     f"({_nothing_found(found)}); a run exits 3", "llm", "not_found",
                     base_url=None)
    return check("ok", f"built-in offline summarizer: no local LLM server found "
                 f"({_nothing_found(found)})", "builtin", "fallback",
                 required=False)


