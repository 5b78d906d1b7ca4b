"""The one client for OpenAI-compatible LLM servers: LM Studio, Ollama, llama.cpp, vLLM, OpenAI.

Chat goes through the ``openai`` package's ``AsyncOpenAI``, streamed: the stall
limit (``--llm-timeout``) is the longest wait for the next token, so a slow model
that is still writing is never cut off. Model discovery reads the servers' own
listings (LM Studio ``/api/v0/models`` says which model is loaded and its context
length, Ollama ``/api/ps`` which models are running, llama.cpp ``/props`` its context,
slots and whether they share one KV cache, everything else ``/v1/models``). Requests
in flight are bounded by :class:`~.llmslots.SlotLimiter`. Errors become
:class:`LLMError` with a stable reason code.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ..settings import Settings
from .health import Check, timed
from .llmreplies import (
    Completion,
    LLMError,
    LLMUnavailable,
    classify_status,
    completion_of,
    error_message,
    estimate_tokens,
    positive_int,
)
from .llmslots import SlotLimiter

if TYPE_CHECKING:  # openai costs 0.5 s to import: only a client that is made loads it
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.chat.completion_create_params import ResponseFormat

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_LLM_URL",
    "Completion",
    "LLMClient",
    "LLMError",
    "LLMUnavailable",
    "ModelInfo",
    "error_message",
    "estimate_tokens",
    "llm_checks",
]

DEFAULT_LLM_URL = "http://localhost:1234/v1"
DEFAULT_CONTEXT_TOKENS = 4096
"""Assumed when the server does not report a context length: what small local models load."""

ServerKind = Literal["lmstudio", "ollama", "llamacpp", "vllm", "openai"]
BUSY_RETRIES = 12
"""Busy answers (429, 503) one request waits out, lowering concurrency each time; they
do not count against --retries."""
_THINKING_MODELS = re.compile(r"qwen3|qwq|deepseek-r1|think", re.IGNORECASE)


@dataclass(slots=True)
class ModelInfo:
    """One model a server lists."""

    id: str
    loaded: bool | None
    """True/False when the server says (LM Studio, Ollama); None when it cannot tell."""
    context_length: int | None = None


def _root_url(base_url: str) -> str | None:
    """``http://host:1234/v1`` → ``http://host:1234``: where the native APIs live."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else None


class LLMClient:
    """Chat completions and model discovery against one OpenAI-compatible server.

    :attr:`limiter` bounds the requests in flight (``--llm-concurrency``); the openai
    package's own retries are off because the summarize stage retries with the run's
    backoff, and busy answers are waited out here.
    """

    def __init__(self, settings: Settings, base_url: str | None = None) -> None:
        self.settings = settings
        self.base_url = (base_url or settings.lm_studio_api_url or DEFAULT_LLM_URL).rstrip("/")
        from openai import AsyncOpenAI

        key = settings.lm_studio_api_key.get_secret_value() if settings.lm_studio_api_key else ""
        # Local servers ignore the key, but the openai package insists on one.
        # The read timeout is the stall limit: the longest wait for the next streamed token.
        self._openai = AsyncOpenAI(
            base_url=self.base_url, api_key=key or "not-needed", max_retries=0,
            timeout=settings.llm_timeout)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(min(settings.llm_timeout, 10.0),
                                  connect=min(settings.connect_timeout, 5.0)),
            headers=headers, trust_env=False,
        )
        self.limiter = SlotLimiter(settings.llm_concurrency)
        self.model: str | None = settings.lm_studio_model
        self.context_length: int = settings.context_tokens or DEFAULT_CONTEXT_TOKENS
        self.kind: ServerKind = "openai"
        self.slots: int | None = None
        """Parallel slots the server reports (llama.cpp ``/props``)."""
        self.shared_context: int | None = None
        """Tokens every request in flight shares (a unified KV cache), when known."""
        self.unified_known = False
        """The server said whether its slots share one KV cache (``kv_unified``)."""
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.latency_total = 0.0

    # ------------------------------------------------------------- discovery
    async def _get_json(self, url: str) -> Any:
        """GET a JSON document; None on 4xx or a non-JSON answer; connection errors raise."""
        resp = await self._http.get(url)
        if resp.status_code >= 400:
            if resp.status_code in (401, 403):
                raise LLMUnavailable("llm_unreachable", f"{url}: HTTP {resp.status_code} "
                                     "(check LM_STUDIO_API_KEY)")
            return None
        try:
            return resp.json()
        except ValueError:
            return None

    async def list_models(self) -> list[ModelInfo]:
        """Every model the server lists, loaded ones marked; raises LLMUnavailable."""
        try:
            return await self._list_models()
        except httpx.HTTPError as exc:
            raise LLMUnavailable(
                "llm_unreachable",
                f"no LLM server answers at {self.base_url} ({type(exc).__name__}): start LM "
                "Studio's local server (or Ollama), set LM_STUDIO_API_URL, or pass --no-summary",
            ) from None

    async def _list_models(self) -> list[ModelInfo]:
        root = _root_url(self.base_url)
        if root is not None:
            native = await self._get_json(root + "/api/v0/models")
            if isinstance(native, dict) and isinstance(native.get("data"), list):
                self.kind = "lmstudio"
                return [
                    ModelInfo(str(m["id"]), m.get("state") == "loaded",
                              positive_int(m.get("loaded_context_length"))
                              or positive_int(m.get("max_context_length")))
                    for m in native["data"]
                    if isinstance(m, dict) and m.get("id") and m.get("type") != "embeddings"
                ]
            props = await self._get_json(root + "/props")
            if isinstance(props, dict) and "default_generation_settings" in props:
                self._read_props(props)
                return await self._openai_models()
            running = await self._get_json(root + "/api/ps")
            if isinstance(running, dict) and isinstance(running.get("models"), list):
                self.kind = "ollama"
                models = [
                    ModelInfo(str(m.get("name") or m.get("model")), True,
                              positive_int(m.get("context_length")))
                    for m in running["models"]
                    if isinstance(m, dict) and (m.get("name") or m.get("model"))
                ]
                known = {m.id for m in models}
                # Ollama loads a pulled model on its first request.
                return models + [m for m in await self._openai_models() if m.id not in known]
        return await self._openai_models()

    def _read_props(self, props: dict[str, Any]) -> None:
        """llama.cpp's ``/props``: slots, the context of one slot, a unified KV cache."""
        self.kind = "llamacpp"
        settings = props.get("default_generation_settings")
        n_ctx = positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
        self.slots = positive_int(props.get("total_slots"))
        unified = props.get("kv_unified")
        self.unified_known = isinstance(unified, bool)
        if n_ctx and not self.settings.context_tokens:
            self.context_length = n_ctx
        if n_ctx and self.slots and self.slots > 1 and unified is not False:
            # One cache for every slot (llama.cpp's default without --parallel): the
            # prompts in flight share n_ctx, so size prompts and concurrency together.
            # Unsaid, n_ctx may as well be each slot's own (--parallel N splits
            # --ctx-size N ways): the limiter then climbs from the fit to the slots.
            self.shared_context = n_ctx

    async def _openai_models(self) -> list[ModelInfo]:
        listing = await self._get_json(self.base_url + "/models")
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            return []
        out = []
        for m in data:
            if not isinstance(m, dict) or not m.get("id"):
                continue
            meta = m["meta"] if isinstance(m.get("meta"), dict) else {}
            # vLLM reports max_model_len; llama-server its n_ctx under meta.
            ctx = positive_int(m.get("max_model_len")) or positive_int(m.get("context_length")) or \
                positive_int(meta.get("n_ctx")) or positive_int(meta.get("n_ctx_train"))
            if m.get("owned_by") == "vllm":
                self.kind = "vllm"
            if self.kind == "llamacpp" and ctx and not positive_int(meta.get("n_ctx")):
                ctx = None  # n_ctx_train is not what the server loaded; /props said
            out.append(ModelInfo(str(m["id"]), None, ctx))
        return out

    async def resolve(self) -> ModelInfo:
        """Pick the model (configured, else the first loaded) and learn its context length.

        Raises LLMUnavailable (exit 3) with what to do when there is none.
        """
        models = await self.list_models()
        wanted = self.settings.lm_studio_model
        if wanted:
            found = next((m for m in models if m.id == wanted), None) or next(
                (m for m in models if m.id.casefold() == wanted.casefold()), None)
            if found is None:
                names = ", ".join(m.id for m in models[:8]) or "none"
                raise LLMUnavailable(
                    "model_not_loaded",
                    f"model {wanted!r} is not available at {self.base_url} (it lists: {names}); "
                    "load it, fix LM_STUDIO_MODEL, or pass --no-summary",
                )
        else:
            found = next((m for m in models if m.loaded), None) or next(
                (m for m in models if m.loaded is None), None)
            if found is None:
                raise LLMUnavailable(
                    "model_not_loaded",
                    f"no model is loaded on the LLM server at {self.base_url}: load one "
                    "(LM Studio: `lms load <model>`), set LM_STUDIO_MODEL, or pass --no-summary",
                )
        self.model = found.id
        if self.kind != "llamacpp" or self.settings.context_tokens:
            self.context_length = (self.settings.context_tokens or found.context_length
                                   or DEFAULT_CONTEXT_TOKENS)
        return found

    def size_concurrency(self, request_tokens: int) -> None:
        """Tell the limiter what the server said, now that a request's size is known."""
        if not self.slots:
            return
        fit = max(1, self.shared_context // request_tokens) if self.shared_context else None
        why = f"the server has {self.slots} slots"
        if fit == 1 and self.slots > 1 and not self.unified_known and \
                self.shared_context is not None and self.shared_context >= request_tokens:
            # A cache shared by several slots that holds one request would make them
            # pointless: n_ctx is each slot's own (llama.cpp --parallel N --ctx-size
            # N*n). A wrong guess overflows once and is capped (SlotLimiter.overflow).
            why += f" of {self.shared_context} tokens each, which hold a request"
            fit = self.slots
        if fit is not None and fit < self.slots:
            why += (f" sharing {self.shared_context} tokens of context, which hold {fit} "
                    f"requests of up to {request_tokens}")
        self.limiter.server_slots(self.slots, fit, why, fit_known=self.unified_known)

    # ------------------------------------------------------------------ chat
    async def chat(self, messages: list[ChatCompletionMessageParam], *,
                   response_format: ResponseFormat | None = None,
                   max_tokens: int | None = None, model: str | None = None) -> Completion:
        """One streamed chat completion; raises LLMError with a reason code.

        Busy answers are waited out (``Retry-After``) with fewer requests in flight,
        up to :data:`BUSY_RETRIES` times.
        """
        if self.model is None:
            await self.resolve()
        assert self.model is not None
        for attempt in range(BUSY_RETRIES + 1):
            try:
                async with self.limiter.slot():
                    done = await self._stream(messages, response_format,
                                              max_tokens or self.settings.lm_studio_max_tokens,
                                              model or self.model)
            except LLMError as exc:
                if not exc.busy:
                    raise
                if attempt == BUSY_RETRIES:
                    raise LLMError(exc.reason, f"the server stayed busy: {exc.message}",
                                   status=exc.status) from None
                await self.limiter.busy(exc.retry_after, f"HTTP {exc.status} (busy)")
                continue
            self.limiter.done(done.latency, done.completion_tokens)
            self.calls += 1
            self.prompt_tokens += done.prompt_tokens
            self.completion_tokens += done.completion_tokens
            self.cached_tokens += done.cached_tokens
            self.latency_total += done.latency
            return done
        raise AssertionError("unreachable")

    def _extra_body(self, model: str) -> dict[str, Any]:
        """Thinking off where the server takes the switch (the stage wants no reasoning)."""
        if self.kind in ("llamacpp", "vllm"):
            return {"chat_template_kwargs": {"enable_thinking": False}}
        return {}

    async def _stream(self, messages: list[ChatCompletionMessageParam],
                      response_format: ResponseFormat | None, max_tokens: int,
                      model: str) -> Completion:
        if _THINKING_MODELS.search(model) and messages and messages[-1]["role"] == "user":
            # Qwen-style models read /no_think in the last user turn.
            last = dict(messages[-1])
            last["content"] = f"{last.get('content') or ''}\n/no_think"
            messages = [*messages[:-1], last]  # type: ignore[list-item]
        import openai  # loaded already: the constructor made the client

        timeouts, broken = _transport_errors()
        start = time.perf_counter()
        parts: list[str] = []
        finish: str | None = None
        usage: Any = None
        timings: dict[str, Any] = {}
        try:
            stream = await self._openai.chat.completions.create(
                model=model, messages=messages, stream=True,
                stream_options={"include_usage": True},
                response_format=openai.omit if response_format is None else response_format,
                max_tokens=max_tokens, temperature=self.settings.lm_studio_temperature,
                extra_body=self._extra_body(model) or None,
            )
            async for chunk in stream:
                if chunk.choices:
                    choice = chunk.choices[0]
                    parts.append(choice.delta.content or "" if choice.delta else "")
                    finish = choice.finish_reason or finish
                usage = chunk.usage or usage
                extra = chunk.model_extra or {}
                if isinstance(extra.get("timings"), dict):
                    timings = extra["timings"]
        except timeouts:
            said = "no token" if not parts else f"no new token after {len(parts)}"
            raise LLMError("timeout", f"{said} within {self.settings.llm_timeout:g} s: the "
                           "model stalled (raise --llm-timeout for very slow models)") from None
        except openai.APIConnectionError as exc:
            raise LLMError("llm_unreachable", f"{self.base_url}: {exc.message}",
                           retryable=True) from None
        except openai.APIStatusError as exc:
            message = error_message(exc.body, exc.message)
            raise classify_status(exc.status_code, message, exc.response.headers) from None
        except openai.APIError as exc:  # an error event, or an answer that is no completion
            message = error_message(exc.body, exc.message)
            raise classify_status(500, message) from None
        except broken as exc:
            raise LLMError("llm_unreachable", f"{self.base_url}: the answer broke off "
                           f"({type(exc).__name__})", retryable=True) from None
        return completion_of("".join(parts), finish, usage, timings, messages,
                           time.perf_counter() - start)

    def metrics(self) -> dict[str, Any]:
        """Calls, tokens, cache share, latency and concurrency (end-of-run summary)."""
        if not self.calls:
            return {}
        cached = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return {
            "llm calls": self.calls,
            "prompt tokens": self.prompt_tokens,
            "completion tokens": self.completion_tokens,
            "cached prompt share": f"{cached:.0%}",
            "mean latency": f"{self.latency_total / self.calls:.2f} s",
            "llm concurrency": self.limiter.limit,
        }

    async def health(self, *, deep: bool = False) -> list[Check]:
        """Checks for `doctor`: reachable, models listed, model present and loaded, and
        with ``deep`` one tiny structured request (its latency)."""
        name = f"llm {self.base_url}"
        try:
            models, ms = await timed(self.list_models())
        except LLMUnavailable as exc:
            return [Check(name, "fail", str(exc))]
        checks = [Check(name, "ok", f"reachable ({self.kind})", ms)]
        listed = ", ".join(m.id for m in models[:5]) + (" …" if len(models) > 5 else "")
        checks.append(Check("llm models", "ok" if models else "fail",
                            f"{len(models)} listed: {listed}" if models else "none listed",
                            data={"models": [m.id for m in models]}))
        try:
            found = await self.resolve()
        except LLMUnavailable as exc:
            checks.append(Check("llm model", "fail", str(exc)))
            return checks
        state = {True: "loaded", False: "not loaded (LM Studio loads it on first use "
                 "when JIT loading is on)", None: "listed"}[found.loaded]
        checks.append(Check("llm model", "warn" if found.loaded is False else "ok",
                            f"{found.id}: {state}, context {self.context_length} tokens",
                            data={"model": found.id, "context_tokens": self.context_length}))
        self.size_concurrency(self.context_length // 2)
        checks.append(Check("llm concurrency", "ok", self.limiter.describe(),
                            data={"concurrency": self.limiter.limit,
                                  "reason": self.limiter.reason, "slots": self.slots}))
        if deep:
            checks.append(await self._deep_check())
        return checks

    async def _deep_check(self) -> Check:
        fmt: ResponseFormat = {"type": "json_schema", "json_schema": {
            "name": "ping", "strict": True, "schema": {
                "type": "object", "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"], "additionalProperties": False}}}
        messages: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}]
        try:
            done = await self.chat(messages, response_format=fmt, max_tokens=20)
        except LLMError as exc:
            if exc.status not in (400, 422):
                return Check("llm answer", "fail", f"{exc.reason}: {exc.message}")
            try:  # the server refuses json_schema; the stage falls back to a plain prompt
                done = await self.chat(messages, max_tokens=20)
            except LLMError as exc2:
                return Check("llm answer", "fail", f"{exc2.reason}: {exc2.message}")
        return Check("llm answer", "ok", f"structured answer in {done.latency * 1000:.0f} ms "
                     f"({done.prompt_tokens}+{done.completion_tokens} tokens)",
                     done.latency * 1000)

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        await self._openai.close()
        await self._http.aclose()


async def llm_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """The LLM server's checks; required only when a run would insist on the LLM."""
    if not settings.enable_ai_summarization:
        return [Check("llm", "skip", "summaries off (ENABLE_AI_SUMMARIZATION=false)",
                      required=False)]
    if settings.summarizer == "builtin":
        return [Check("llm", "skip", "built-in summarizer chosen", required=False)]
    required = settings.summarizer == "llm" or settings.lm_studio_api_url is not None
    client = LLMClient(settings)
    try:
        checks = await client.health(deep=bool(options.get("deep")))
    finally:
        await client.aclose()
    for check in checks:
        check.required = required
    return checks


def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, broken answers) as the openai package raises them while streaming.

    openai 2+ speaks httpx2, whose transport errors surface while a stream is read;
    imported here, not at start-up (openai costs 0.5 s to import).
    """
    import openai

    try:
        import httpx2
    except ImportError:  # pragma: no cover - older openai on httpx
        return (openai.APITimeoutError, httpx.TimeoutException), (httpx.HTTPError,)
    return ((openai.APITimeoutError, httpx.TimeoutException, httpx2.TimeoutException),
            (httpx.HTTPError, httpx2.HTTPError))
