"""Summaries from an OpenAI-compatible LLM: one structured call per page.

The answer is ``{summary, keywords, tags, language}``, validated by
:class:`SummaryAnswer`; nothing else the model says reaches the output. The prompt
(:mod:`.prompt`) keeps a byte-identical prefix for the server's cache; the page text
is what :mod:`.reading` picks within ``--llm-input-tokens`` (``--llm-full-text``
reads a long page in parts and combines them).

Token counting uses an estimate, not a tokenizer (tiktoken downloads its tables
on first use, and local models use other vocabularies anyway):
:func:`~..services.llm.estimate_tokens`, UTF-8 bytes / 3, which over-counts, so
prompts built against it stay inside the context the server reports.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..attempts import with_retries
from ..errors import StageError
from ..models import fingerprint_of
from ..services.llm import Completion, LLMClient, LLMError, estimate_tokens
from ..settings import Settings
from ..tags import normalize_tags, tag_identity
from ..workers import run_cpu
from .answer import (
    SENTENCE_END,
    AnswerError,
    SummaryAnswer,
    language_code,
    parse_answer,
    split_text,
)
from .base import Summary
from .prompt import PromptBuilder, VocabularySteps, style_tag
from .reading import select_text

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = [
    "PROMPT_VERSION",
    "AnswerError",
    "LLMSummarizer",
    "SummaryAnswer",
    "estimate_tokens",
    "parse_answer",
    "split_text",
]

PROMPT_VERSION = "2"
MAX_PARTS = 16
"""A book-length page is read up to this many context-sized parts, not to its end."""
_MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds around each message."""
_SAFETY = 64
_MIN_TEXT_TOKENS = 128


@dataclass(slots=True)
class _Usage:
    """What one page cost; the calls made for it (parts, repairs) add to the same one."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: list[int] = field(default_factory=list)
    parts: int = 0
    repairs: int = 0
    prompt_json: int = 0
    """Calls that asked for JSON in the prompt, as the server refused json_schema."""

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "latency_ms": self.latency_ms,
                "parts": self.parts, "repairs": self.repairs, "prompt_json": self.prompt_json}


# Set per summarize() call; the tasks it gathers share the same object.
_usage: ContextVar[_Usage | None] = ContextVar("llm_usage", default=None)


# ------------------------------------------------------------------- the summarizer
Kind = Literal["page", "part", "combine"]
_TALLY: ContextVar[list[Completion] | None] = ContextVar("llm_tally", default=None)
"""The answers of the bookmark being summarized (its token counts)."""
_OVERFLOW_RETRIES = 2


class LLMSummarizer:
    """The Summarizer protocol over :class:`LLMClient`.

    Structured output is negotiated once per run: the first request asks for
    ``json_schema``; if the server refuses it, every later request uses a plain
    prompt that asks for JSON. An answer that does not validate (after closing one
    that ran out of tokens) gets one repair request that shows the model its error,
    then the stage fails with ``bad_json``. A context overflow is retried with half
    the text and one request fewer in flight.
    """

    name = "llm"

    def __init__(self, settings: Settings, client: LLMClient | None = None, *,
                 base_url: str | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.prompt = PromptBuilder(settings)
        self.client = client or LLMClient(settings, base_url)
        self.notify = notify
        self.mode: Literal["json_schema", "prompt"] | None = None
        self._negotiating = asyncio.Lock()
        self.vocabulary = VocabularySteps()
        self.tallies: list[tuple[int, int, int]] = []
        """(prompt, completion, cached) tokens of each summarized bookmark."""
        self.estimated = False

    @property
    def model(self) -> str | None:
        return self.client.model

    def fingerprint(self) -> str:
        s = self.settings
        return fingerprint_of("llm", PROMPT_VERSION, self.client.model, s.language,
                              s.lm_studio_temperature, s.context_tokens,
                              self.prompt.fingerprint())

    async def preflight(self) -> None:
        """Find the model, its context and slots; raise LLMUnavailable (exit 3) if none."""
        await self.client.resolve()
        self._size()

    def concurrency_line(self) -> str:
        """The run's line saying how many requests go at once, and why."""
        self._size()
        return f"llm concurrency: {self.client.limiter.describe()}"

    def _size(self) -> None:
        self.prompt.fit_context(self.client.context_length)
        system = self.prompt.messages("", {}, language=None, vocabulary=[])[0]["content"]
        request = (estimate_tokens(str(system)) + self.input_budget + 200
                   + self.prompt.answer_tokens())
        self.client.size_concurrency(min(request, self.client.context_length))

    def metrics(self) -> dict[str, Any]:
        figures = self.client.metrics()
        if self.tallies:
            prompt = statistics.median(t[0] for t in self.tallies)
            completion = statistics.median(t[1] for t in self.tallies)
            figures["median tokens/bookmark"] = (
                f"{prompt:.0f}+{completion:.0f}" + (" (estimated)" if self.estimated else ""))
        return figures

    async def aclose(self) -> None:
        await self.client.aclose()

    # ---------------------------------------------------------------- budget
    @property
    def input_budget(self) -> int:
        """Tokens of page text one request reads: --llm-input-tokens, or less when the
        context is small (the prompt's prefix and the answer are paid for first)."""
        room = self.client.context_length - self.prompt.answer_tokens() - 1000
        return max(_MIN_TEXT_TOKENS, min(self.settings.llm_input_tokens, room))

    def _text_budget(self, messages: list[ChatCompletionMessageParam]) -> int:
        """Tokens left for page text once the fixed prompt and the answer are paid for."""
        fixed = sum(estimate_tokens(str(m.get("content") or "")) + _MESSAGE_OVERHEAD
                    for m in messages)
        return self.client.context_length - self.prompt.answer_tokens() - fixed - _SAFETY

    # ------------------------------------------------------------- summarize
    async def summarize(self, text: str, meta: dict[str, Any], *,
                        existing_tags: list[str]) -> Summary:
        """Summarize one page: one call with what fits the input budget."""
        if self.client.model is None:
            await self.client.resolve()
            self._size()
        s = self.settings
        language = language_code(s.language) or language_code(meta.get("language"))
        vocabulary = self.vocabulary.offer(existing_tags)
        tally: list[Completion] = []
        _TALLY.set(tally)
        usage = _Usage()
        token = _usage.set(usage)  # the report's figures: calls, tokens, latency, repairs
        try:
            answer = await self._read(text.strip(), meta, language, vocabulary)
            tags = answer.tags
            if s.tag_model:
                tags = (await self._tags(text.strip(), meta, language, vocabulary)).tags
        finally:
            _usage.reset(token)
        self._count(tally)
        return Summary(summary=self._trim(answer.summary), keywords=answer.keywords,
                       tags=self._tidy(tags), language=language or answer.language,
                       summarizer="llm", model=self.client.model, usage=usage.as_dict())

    def _count(self, tally: list[Completion]) -> None:
        self.tallies.append((sum(c.prompt_tokens for c in tally),
                             sum(c.completion_tokens for c in tally),
                             sum(c.cached_tokens for c in tally)))
        self.estimated = self.estimated or any(c.estimated for c in tally)

    def _trim(self, summary: str) -> str:
        n = self.settings.summary_sentences
        if "\n" in summary:
            return "\n".join(summary.splitlines()[:n])
        return " ".join(SENTENCE_END.split(summary)[:n])

    def _tidy(self, tags: list[str]) -> list[str]:
        s = self.settings
        allowed = {tag_identity(t): t for t in self.prompt.tag_list or ()}
        if allowed:  # a server that ignores the schema's enum still cannot add tags
            tags = [allowed[tag_identity(t)] for t in tags if tag_identity(t) in allowed]
            return normalize_tags(tags, limit=s.max_tags, lowercase=False)
        styled = [style_tag(t, s.effective_tag_style) for t in without_runaways(tags)]
        return normalize_tags(styled, limit=s.max_tags,
                              lowercase=s.effective_tag_style != "as-written")

    async def _read(self, text: str, meta: dict[str, Any], language: str | None,
                    vocabulary: list[str]) -> SummaryAnswer:
        budget = self.input_budget
        if self.settings.llm_full_text and estimate_tokens(text) > budget:
            return await self._describe(text, meta, language, vocabulary, depth=0)
        for attempt in range(_OVERFLOW_RETRIES + 1):
            chosen = await run_cpu(self.settings.extract_processes, select_text, text,
                                   budget, language)
            messages = self.prompt.messages(chosen, meta, language=language,
                                            vocabulary=vocabulary,
                                            tags=not self.settings.tag_model)
            try:
                return await self._ask(messages)
            except StageError as exc:
                if exc.reason != "context_overflow" or attempt == _OVERFLOW_RETRIES:
                    raise
            # The server's context is shared or smaller than it said: less text, fewer
            # requests at once.
            self.client.limiter.overflow()
            budget = max(_MIN_TEXT_TOKENS, budget // 2)
        raise AssertionError("unreachable")

    async def _tags(self, text: str, meta: dict[str, Any], language: str | None,
                    vocabulary: list[str]) -> SummaryAnswer:
        chosen = await run_cpu(self.settings.extract_processes, select_text, text,
                               self.input_budget, language)
        messages = self.prompt.messages(chosen, meta, language=language,
                                        vocabulary=vocabulary, summary=False)
        return await self._ask(messages, summary=False, model=self.settings.tag_model)

    async def _describe(self, text: str, meta: dict[str, Any], language: str | None,
                        vocabulary: list[str], *, depth: int,
                        note: str = "") -> SummaryAnswer:
        """--llm-full-text: the page in context-sized parts, then their answers combined."""
        frame = self.prompt.messages("", meta, language=language, vocabulary=vocabulary,
                                     note="This is part 99 of 99 of a long page.")
        budget = self._text_budget(frame)
        if budget < _MIN_TEXT_TOKENS:
            raise StageError("context_overflow",
                             f"a context of {self.client.context_length} tokens leaves no room "
                             "for page text; load the model with a longer context or lower "
                             "LM_STUDIO_MAX_TOKENS")
        if estimate_tokens(text) <= budget:
            return await self._ask(self.prompt.messages(
                text, meta, language=language, vocabulary=vocabulary, note=note))
        if depth >= 3:
            raise StageError("context_overflow", "the page is too long to summarize within "
                             f"a context of {self.client.context_length} tokens")
        chunks = split_text(text, budget)[:MAX_PARTS]
        usage = _usage.get()
        if usage is not None and depth == 0:
            usage.parts = len(chunks)
        parts = await asyncio.gather(*(
            self._ask(self.prompt.messages(
                chunk, meta, language=language, vocabulary=vocabulary,
                note=f"This is part {i} of {len(chunks)} of a long page; describe this part."))
            for i, chunk in enumerate(chunks, 1)
        ))
        combined = "\n\n".join(
            f"Part {i}: {p.summary}" + (f" Keywords: {', '.join(p.keywords)}." if p.keywords
                                        else "")
            + (f" Tags: {', '.join(p.tags)}." if p.tags else "")
            for i, p in enumerate(parts, 1)
        )
        if len(combined) >= len(text):
            raise StageError("context_overflow", "the page's parts do not shrink when "
                             "summarized; the context is too small")
        return await self._describe(
            combined, meta, language, vocabulary, depth=depth + 1,
            note="Below are descriptions of the consecutive parts of one long page. "
                 "Combine them into one answer for the whole page.")

    async def _ask(self, messages: list[ChatCompletionMessageParam], *, summary: bool = True,
                   model: str | None = None) -> SummaryAnswer:
        done = await self._complete(messages, summary=summary, model=model)
        try:
            return _parse(done.content, summary)
        except AnswerError as exc:
            first_error = exc
        keys = "summary, keywords, tags and language" if summary else "tags"
        note = (f"Your answer was not valid: {first_error}. Reply with only the corrected "
                f"JSON object with the keys {keys}.")
        system = messages[0]
        repair: list[ChatCompletionMessageParam] = [
            system, {"role": "user", "content": "Here is an answer:\n"
                     + done.content[:4000] + "\n\n" + note}]
        usage = _usage.get()
        if usage is not None:
            usage.repairs += 1
        fixed = await self._complete(repair, summary=summary, model=model)
        try:
            return _parse(fixed.content, summary)
        except AnswerError as exc:
            raise StageError("bad_json", f"the model's answer is not valid after one repair "
                             f"request: {exc}") from None

    async def _complete(self, messages: list[ChatCompletionMessageParam], *,
                        summary: bool = True, model: str | None = None) -> Completion:
        if self.mode is None:
            # The first request settles the output mode; the others wait for it, so a
            # server that refuses json_schema costs one refused request per run.
            async with self._negotiating:
                if self.mode is None:
                    return await self._negotiate(messages, summary, model)
        return await self._call(messages, structured=self.mode == "json_schema",
                                summary=summary, model=model)

    async def _negotiate(self, messages: list[ChatCompletionMessageParam], summary: bool,
                         model: str | None) -> Completion:
        try:
            done = await self._call(messages, structured=True, summary=summary, model=model)
        except LLMError as exc:
            if not _refuses_schema(exc):
                raise
            self.mode = "prompt"
            if self.notify is not None:
                self.notify(f"the LLM server refused json_schema output ({exc.message}); "
                            "asking for JSON in the prompt instead")
            return await self._call(messages, structured=False, summary=summary, model=model)
        self.mode = "json_schema"
        return done

    async def _call(self, messages: list[ChatCompletionMessageParam], *, structured: bool,
                    summary: bool = True, model: str | None = None) -> Completion:
        s = self.settings
        tags = not s.tag_model or not summary
        fmt = self.prompt.response_format(tags=tags, summary=summary) if structured else None
        done, _ = await with_retries(
            lambda: self.client.chat(messages, response_format=fmt, model=model,
                                     max_tokens=self.prompt.answer_tokens(
                                         tags=tags, summary=summary)),
            retries=s.retries, backoff=s.backoff, max_retry_after=s.max_retry_after,
        )
        usage = _usage.get()
        if usage is not None:
            usage.calls += 1
            usage.prompt_tokens += done.prompt_tokens
            usage.completion_tokens += done.completion_tokens
            usage.latency_ms.append(round(done.latency * 1000))
            usage.prompt_json += not structured
        tally = _TALLY.get()
        if tally is not None:
            tally.append(done)
        return done


def without_runaways(tags: list[str]) -> list[str]:
    """Tags less a small model's runaways: an earlier tag again with a number after it
    (``electricsuv``, ``electricsuv3``, ``electricsuv31``...), which spreads one topic
    over several tags."""
    out: list[str] = []
    stems: set[str] = set()
    for tag in tags:
        stem = tag_identity(tag.rstrip("0123456789_- "))
        if stem in stems and tag_identity(tag) != stem:
            continue
        stems.add(tag_identity(tag))
        out.append(tag)
    return out


def _parse(content: str, summary: bool) -> SummaryAnswer:
    if summary:
        return parse_answer(content)
    # A tags-only answer: give it a stand-in summary so one validator serves both.
    try:
        return parse_answer(content.replace("{", '{"summary": "(tags only)", ', 1))
    except AnswerError:
        return parse_answer(content)


def _refuses_schema(exc: LLMError) -> bool:
    """A 400/422 that is not about the context or the model: the format was refused."""
    if "response_format" in exc.message or "json_schema" in exc.message:
        return exc.reason not in ("context_overflow", "rate_limited")
    return exc.status in (400, 422) and exc.reason == "server_error"
