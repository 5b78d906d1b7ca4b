"""The interface the summarize stage uses, whichever back end does the work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Summarizer", "Summary"]


@dataclass(slots=True)
class Summary:
    """A validated summary; only these fields ever reach the output."""

    summary: str
    keywords: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    language: str | None = None
    summarizer: str = "builtin"
    """``llm`` or ``builtin``."""
    model: str | None = None
    usage: dict[str, Any] | None = None
    """What the back end spent on this page (LLM calls, tokens, latencies), for reports."""


class Summarizer(Protocol):
    name: str
    """``llm`` or ``builtin``."""

    def fingerprint(self) -> str:
        """Model + prompt version + the settings that change the answer."""
        ...

    async def preflight(self) -> None:
        """Raise ServiceUnavailable when the back end cannot work."""
        ...

    async def summarize(self, text: str, meta: dict[str, Any], *,
                        existing_tags: list[str]) -> Summary:
        """Summarize one page; raise StageError with a reason on failure."""
        ...

    async def aclose(self) -> None: ...
