"""Which summarizer a run uses.

INTERIM VERSION (issue 3). The owner of issue 4 replaces the body of
:func:`choose_summarizer` with local-server discovery (LM Studio, Ollama,
llama-server, vLLM probed concurrently when ``LM_STUDIO_API_URL`` is unset) and
the built-in offline summarizer as the ``auto`` fallback; keep the signature,
since ``stages/summarize.py`` calls it from its preflight. Until then: ``llm``
and ``auto`` use the LLM at ``LM_STUDIO_API_URL`` (default
``http://localhost:1234/v1``), and ``builtin`` is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..services.llm import DEFAULT_LLM_URL
from ..settings import Settings
from .base import Summarizer
from .llm import LLMSummarizer

__all__ = ["choose_summarizer"]


async def choose_summarizer(settings: Settings,
                            notify: Callable[[str], None] | None = None) -> Summarizer:
    """The summarizer for this run, checked and ready (its preflight has passed).

    Raises ServiceUnavailable (exit 3) with an actionable line when the chosen back
    end cannot work. ``notify`` receives one-line notices for stderr (what was chosen).
    """
    if settings.summarizer == "builtin":
        raise ConfigError("the built-in summarizer is not available yet; use --summarizer llm")
    summarizer = LLMSummarizer(settings, base_url=settings.lm_studio_api_url or DEFAULT_LLM_URL,
                               notify=notify)
    try:
        await summarizer.preflight()
    except BaseException:
        await summarizer.aclose()
        raise
    return summarizer
