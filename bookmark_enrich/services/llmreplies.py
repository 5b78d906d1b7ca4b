"""What OpenAI-compatible LLM servers answer: errors as reason codes, and completions.

Split from :mod:`.llm` (the client) so the client stays readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # openai loads with the client, not at start-up
    from openai.types.chat import ChatCompletionMessageParam

from ..errors import ServiceUnavailable, StageError

__all__ = ["Completion", "LLMError", "LLMUnavailable", "classify_status", "completion_of",
           "error_message", "estimate_tokens", "positive_int"]


_BUSY = re.compile(r"\bbusy\b|no (free|available) slots?|overloaded|try again later",
                   re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` costs at most, about: UTF-8 bytes / 3.

    That over-counts English (about 4 bytes a token) by a third and is close for CJK
    scripts (3 bytes a character, about a token each), so prompts sized with it stay
    inside the context; it also stands in for ``usage`` when a server reports none.
    """
    return len(text.encode("utf-8")) // 3 + 1


_OVERFLOW = re.compile(
    r"context (length|window|size)|maximum context|too many tokens|n_ctx|prompt is too long|"
    r"exceeds? the (available )?context|context_length_exceeded|context overflow",
    re.IGNORECASE,
)


_NOT_LOADED = re.compile(
    r"no models? (is |are )?loaded|not loaded|model_not_found|model .{0,80}not (found|exist)|"
    r"no model|unknown model|does not exist|failed to load model",
    re.IGNORECASE,
)


class LLMUnavailable(ServiceUnavailable):
    """The LLM server cannot serve this run (exit 3); ``reason`` is the per-bookmark code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LLMError(StageError):
    """A failed LLM request; ``status`` is the HTTP status when the server answered."""

    def __init__(self, reason: str, message: str, *, status: int | None = None,
                 retryable: bool = False, retry_after: float | None = None,
                 busy: bool = False) -> None:
        super().__init__(reason, message, retryable=retryable, retry_after=retry_after)
        self.status = status
        self.busy = busy
        """The server is full (429, 503, "busy"): wait and send fewer at once."""


@dataclass(slots=True)


class Completion:
    """The text of one answer and what it cost."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    latency: float
    finish_reason: str | None = None
    cached_tokens: int = 0
    """Prompt tokens the server's cache served (llama.cpp ``timings.cache_n``, OpenAI
    ``prompt_tokens_details.cached_tokens``)."""
    estimated: bool = False
    """The server reported no ``usage``: the counts are :func:`estimate_tokens`'."""


def error_message(body: object, fallback: str) -> str:
    """The human message of an error body.

    LM Studio answers ``{"error": "text"}`` as well as ``{"error": {"message": ...}}``;
    the openai package has already unwrapped the outer ``error`` key.
    """
    if isinstance(body, str) and body.strip():
        return body.strip()
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, dict):
                return error_message(value, fallback)
    return fallback


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify_status(status: int, message: str, headers: Any = None) -> LLMError:
    """Map an HTTP error answer onto a stable reason code."""
    text = f"HTTP {status}: {message}"
    if status in (429, 503) or _BUSY.search(message):
        return LLMError("rate_limited", text, status=status, retryable=True,
                        retry_after=_retry_after(headers), busy=True)
    if _OVERFLOW.search(message):
        return LLMError("context_overflow", text, status=status)
    if _NOT_LOADED.search(message) or status == 404:
        return LLMError("model_not_loaded", text, status=status)
    if status >= 500:
        return LLMError("server_error", text, status=status, retryable=True,
                        retry_after=_retry_after(headers))
    return LLMError("server_error", text, status=status)


def positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def completion_of(content: str, finish: str | None, usage: Any, timings: dict[str, Any],
                messages: list[ChatCompletionMessageParam], latency: float) -> Completion:
    """What one streamed answer said and cost; estimated when the server kept quiet."""
    cached = positive_int(timings.get("cache_n")) or 0
    details = getattr(usage, "prompt_tokens_details", None) if usage is not None else None
    cached = cached or (positive_int(getattr(details, "cached_tokens", None)) or 0)
    if usage is not None and usage.prompt_tokens:
        return Completion(content, usage.prompt_tokens, usage.completion_tokens or 0,
                          latency, finish, cached)
    if positive_int(timings.get("prompt_n")) is not None or cached:
        prompt = (positive_int(timings.get("prompt_n")) or 0) + cached
        return Completion(content, prompt, positive_int(timings.get("predicted_n")) or 0, latency,
                          finish, cached)
    prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    return Completion(content, prompt, estimate_tokens(content) if content else 0, latency,
                      finish, 0, estimated=True)
