"""The one client for OpenAI-compatible LLM servers: LM Studio, Ollama, llama.cpp, vLLM, OpenAI.

Chat goes through the ``openai`` package's ``AsyncOpenAI``; model discovery reads
the servers' own listings (LM Studio ``/api/v0/models`` says which model is loaded
and its context length, Ollama ``/api/ps`` which models are running, everything
else ``/v1/models``). Errors become :class:`LLMError` with a stable reason code.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ..errors import ServiceUnavailable, StageError
from ..settings import Settings
from .health import Check, timed

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
    "llm_checks",
]

DEFAULT_LLM_URL = "http://localhost:1234/v1"
DEFAULT_CONTEXT_TOKENS = 4096
"""Assumed when the server does not report a context length: what small local models load."""

ServerKind = Literal["lmstudio", "ollama", "openai"]

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
                 retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason, message, retryable=retryable, retry_after=retry_after)
        self.status = status


@dataclass(slots=True)
class ModelInfo:
    """One model a server lists."""

    id: str
    loaded: bool | None
    """True/False when the server says (LM Studio, Ollama); None when it cannot tell."""
    context_length: int | None = None


@dataclass(slots=True)
class Completion:
    """The text of one answer and what it cost."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    latency: float
    finish_reason: str | None = None


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
    if status == 429:
        return LLMError("rate_limited", text, status=status, retryable=True,
                        retry_after=_retry_after(headers))
    if _OVERFLOW.search(message):
        return LLMError("context_overflow", text, status=status)
    if _NOT_LOADED.search(message) or status == 404:
        return LLMError("model_not_loaded", text, status=status)
    if status >= 500:
        return LLMError("server_error", text, status=status, retryable=True,
                        retry_after=_retry_after(headers))
    return LLMError("server_error", text, status=status)


def _root_url(base_url: str) -> str | None:
    """``http://host:1234/v1`` → ``http://host:1234``: where the native APIs live."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class LLMClient:
    """Chat completions and model discovery against one OpenAI-compatible server.

    ``llm_concurrency`` bounds the requests in flight; the openai package's own
    retries are off because the summarize stage retries with the run's backoff.
    """

    def __init__(self, settings: Settings, base_url: str | None = None) -> None:
        self.settings = settings
        self.base_url = (base_url or settings.lm_studio_api_url or DEFAULT_LLM_URL).rstrip("/")
        from openai import AsyncOpenAI

        key = settings.lm_studio_api_key.get_secret_value() if settings.lm_studio_api_key else ""
        # Local servers ignore the key, but the openai package insists on one.
        self._openai = AsyncOpenAI(base_url=self.base_url, api_key=key or "not-needed",
                                   timeout=settings.llm_timeout, max_retries=0)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(min(settings.llm_timeout, 10.0),
                                  connect=min(settings.connect_timeout, 5.0)),
            headers=headers, trust_env=False,
        )
        self._slots = asyncio.Semaphore(settings.llm_concurrency)
        self.model: str | None = settings.lm_studio_model
        self.context_length: int = settings.context_tokens or DEFAULT_CONTEXT_TOKENS
        self.kind: ServerKind = "openai"
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
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
                              _int(m.get("loaded_context_length"))
                              or _int(m.get("max_context_length")))
                    for m in native["data"]
                    if isinstance(m, dict) and m.get("id") and m.get("type") != "embeddings"
                ]
            running = await self._get_json(root + "/api/ps")
            if isinstance(running, dict) and isinstance(running.get("models"), list):
                self.kind = "ollama"
                models = [
                    ModelInfo(str(m.get("name") or m.get("model")), True,
                              _int(m.get("context_length")))
                    for m in running["models"]
                    if isinstance(m, dict) and (m.get("name") or m.get("model"))
                ]
                known = {m.id for m in models}
                # Ollama loads a pulled model on its first request.
                return models + [m for m in await self._openai_models() if m.id not in known]
        return await self._openai_models()

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
            ctx = _int(m.get("max_model_len")) or _int(m.get("context_length")) or \
                _int(meta.get("n_ctx")) or _int(meta.get("n_ctx_train"))
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
        self.context_length = (self.settings.context_tokens or found.context_length
                               or DEFAULT_CONTEXT_TOKENS)
        return found

    # ------------------------------------------------------------------ chat
    async def chat(self, messages: list[ChatCompletionMessageParam], *,
                   response_format: ResponseFormat | None = None,
                   max_tokens: int | None = None) -> Completion:
        """One chat completion; raises LLMError with a reason code."""
        import openai  # loaded already: the constructor made the client

        if self.model is None:
            await self.resolve()
        assert self.model is not None
        async with self._slots:
            start = time.perf_counter()
            try:
                resp = await self._openai.chat.completions.create(
                    model=self.model, messages=messages,
                    response_format=openai.omit if response_format is None else response_format,
                    max_tokens=max_tokens or self.settings.lm_studio_max_tokens,
                    temperature=self.settings.lm_studio_temperature,
                )
            except openai.APITimeoutError:
                raise LLMError("timeout", f"no answer within {self.settings.llm_timeout:g} s "
                               "(raise --llm-timeout for slow models)") from None
            except openai.APIConnectionError as exc:
                raise LLMError("llm_unreachable", f"{self.base_url}: {exc.message}",
                               retryable=True) from None
            except openai.APIStatusError as exc:
                message = error_message(exc.body, exc.message)
                raise classify_status(exc.status_code, message, exc.response.headers) from None
            except openai.APIError as exc:  # an answer that is not a chat completion
                raise LLMError("server_error", exc.message) from None
            latency = time.perf_counter() - start
        if not resp.choices:
            raise LLMError("server_error", "the server answered without a choice")
        choice = resp.choices[0]
        usage = resp.usage
        done = Completion(
            content=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency=latency,
            finish_reason=choice.finish_reason,
        )
        self.calls += 1
        self.prompt_tokens += done.prompt_tokens
        self.completion_tokens += done.completion_tokens
        self.latency_total += latency
        return done

    def metrics(self) -> dict[str, Any]:
        """Calls, tokens and mean latency so far (for the end-of-run summary)."""
        if not self.calls:
            return {}
        return {
            "llm calls": self.calls,
            "prompt tokens": self.prompt_tokens,
            "completion tokens": self.completion_tokens,
            "mean latency": f"{self.latency_total / self.calls:.2f} s",
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
