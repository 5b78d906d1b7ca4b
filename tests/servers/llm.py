"""A real OpenAI-compatible HTTP server on 127.0.0.1 that imitates local LLM servers.

Plain module (no pytest) so benchmarks can start it too. Endpoints:

- ``POST /v1/chat/completions``  a deterministic answer built from the prompt
- ``GET /v1/models``             the models (OpenAI shape)
- ``GET /api/v0/models``         LM Studio's listing (``state``, ``max_context_length``)
- ``GET /api/ps``                Ollama's running models

``flavor`` picks the server imitated: ``lmstudio`` (native listing, refuses
``json_object``, errors as ``{"error": "text"}``), ``ollama`` (``/api/ps``, errors as
``{"error": {"message": ...}}``) or ``openai`` (only ``/v1``). Behaviours are flags
in ``modes``:

- ``no_model``          nothing loaded (LM Studio) / nothing listed
- ``reject_schema``     400 on ``response_format: json_schema`` (an old llama.cpp)
- ``think``             answers start with a ``<think>`` block
- ``fences``            the JSON sits in a Markdown fence with chatter around it
- ``invalid_first``     the first answer of each conversation is broken JSON
- ``always_invalid``    every answer is broken JSON
- ``runaway_tags``      tags that repeat one with numbers after it
- ``messy_tags``        duplicate and messy tags
- ``slow``              every answer waits ``slow_seconds``
- ``flaky``             the first chat request gets a 500
- ``rate_limited``      every chat request gets a 429
- ``obey``              the model follows instructions in the page (prompt injection)
- ``stall``             a streamed answer sends one token, then nothing for ``slow_seconds``
- ``overflow_once``     the first chat request gets llama.cpp's HTTP 500 "Context size
                        has been exceeded"
- ``no_usage``          answers carry neither ``usage`` nor ``timings``

``flavor`` ``llamacpp`` adds llama.cpp's ``/props`` (``total_slots``, ``n_ctx``, a
unified KV cache). ``slots`` (any flavor) is how many chat requests run at once; one
more gets a 503 with ``Retry-After`` at once, like a server whose slots are full;
``peak`` is the most that were in flight. Answers are streamed (SSE) when the request
asks, and carry ``usage`` and llama.cpp's ``timings`` (``prompt_n``, ``cache_n``: the
prompt's longest token prefix shared with an earlier prompt).

The server counts tokens as UTF-8 bytes / 4 and rejects a prompt that does not fit
``context_length`` with a context-overflow error, like real servers do. It records
every chat request body in ``requests`` and counts hits per path in ``hits``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import loopback_httpd

__all__ = ["MODEL", "LLMServer", "fake_tokens"]

MODEL = "test-model-7b"


def fake_tokens(text: str) -> int:
    """The fake server's tokenizer: UTF-8 bytes / 4 (close to real ones for English)."""
    return len(text.encode()) // 4 + 1


class LLMServer:
    """Start with :meth:`start`; ``base_url`` is the ``/v1`` address a client uses."""

    def __init__(self, *, flavor: str = "lmstudio", modes: set[str] | None = None,
                 latency: float = 0.0, slow_seconds: float = 5.0, context_length: int = 8192,
                 models: list[str] | None = None, port: int = 0,
                 slots: int | None = None) -> None:
        self.flavor = flavor
        self.modes: set[str] = set(modes or ())
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.context_length = context_length
        self.models = list(models or [MODEL])
        self.slots = slots
        self.in_flight = 0
        self.peak = 0
        self.busy_answers = 0
        self._prompts: list[str] = []
        self.hits: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._chat_count = 0
        self.httpd = loopback_httpd(self._handle, methods=("GET", "POST"), port=port,
                                    queue_size=256)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self, **changes: Any) -> None:
        """Forget requests and counts; change any attribute (``modes``, ``models``...)."""
        with self._lock:
            self.hits.clear()
            self.requests.clear()
            self.rejected.clear()
            self._chat_count = 0
            self.in_flight = self.peak = self.busy_answers = 0
            self._prompts = []
            for name, value in changes.items():
                setattr(self, name, value)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]

    # ----------------------------------------------------------------- plumbing
    def _send(self, req: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)

    def _error(self, req: BaseHTTPRequestHandler, status: int, message: str,
               headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.rejected.append(message)
        if self.flavor == "lmstudio":
            body: Any = {"error": message}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error"}}
        self._send(req, status, body, headers)

    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        path = req.path.split("?", 1)[0]
        with self._lock:
            self.hits[path] += 1
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if method == "GET":
                self._get(req, path)
                return
            length = int(req.headers.get("Content-Length") or 0)
            raw = req.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._error(req, 400, "body is not JSON")
                return
            with self._lock:
                self.requests.append(body)
            if path == "/v1/chat/completions":
                self._chat(req, body)
            else:
                self._error(req, 404, f"unexpected endpoint {path}")

    def _loaded(self) -> list[str]:
        return [] if "no_model" in self.modes else self.models

    def _get(self, req: BaseHTTPRequestHandler, path: str) -> None:
        if path == "/v1/models":
            listed = self.models if self.flavor == "lmstudio" else self._loaded()
            self._send(req, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "organization_owner"} for m in listed]})
        elif path == "/api/v0/models" and self.flavor == "lmstudio":
            loaded = self._loaded()
            self._send(req, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "type": "llm", "state":
                 "loaded" if m in loaded else "not-loaded", "max_context_length":
                 self.context_length} for m in self.models] + [
                {"id": "text-embedding-nomic", "object": "model", "type": "embeddings",
                 "state": "loaded", "max_context_length": 2048}]})
        elif path == "/props" and self.flavor == "llamacpp":
            self._send(req, 200, {"default_generation_settings": {"n_ctx": self.context_length},
                                  "total_slots": self.slots or 1, "kv_unified": True})
        elif path == "/api/ps" and self.flavor == "ollama":
            self._send(req, 200, {"models": [
                {"name": m, "model": m, "size": 1, "context_length": self.context_length}
                for m in self._loaded()]})
        else:
            req.send_response(404)
            req.send_header("Content-Length", "0")
            req.end_headers()

    # --------------------------------------------------------------------- chat
    def _chat(self, req: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            full = self.slots is not None and self.in_flight >= self.slots
            if full:
                self.busy_answers += 1
            else:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
        if full:
            self._error(req, 503, "Server busy: all slots are processing",
                        {"Retry-After": "0"})
            return
        try:
            self._chat_in_slot(req, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _chat_in_slot(self, req: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self._chat_count += 1
            count = self._chat_count
        if self.latency:
            time.sleep(self.latency)
        if "slow" in self.modes:
            time.sleep(self.slow_seconds)
        if "rate_limited" in self.modes:
            self._error(req, 429, "Too many requests", {"Retry-After": "0"})
            return
        if "overflow_once" in self.modes and count == 1:
            self._error(req, 500, "Context size has been exceeded.")
            return
        if "flaky" in self.modes and count == 1:
            self._error(req, 500, "Internal server error: worker crashed")
            return
        if "no_model" in self.modes or body.get("model") not in self.models:
            msg = ("No models loaded. Please load a model in the developer page or use the "
                   "`lms load` command." if self.flavor == "lmstudio"
                   else f"model '{body.get('model')}' not found")
            self._error(req, 404, msg)
            return
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_object" and self.flavor == "lmstudio":
            self._error(req, 400, "'response_format.type' must be 'json_schema' or 'text'")
            return
        if fmt.get("type") == "json_schema" and "reject_schema" in self.modes:
            self._error(req, 400, "Unsupported response_format type: json_schema")
            return
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        prompt_tokens = fake_tokens(prompt) + 4 * len(messages)
        max_tokens = int(body.get("max_tokens") or 0)
        if prompt_tokens + max_tokens > self.context_length:
            self._error(req, 400, f"The number of tokens to keep from the initial prompt is "
                        f"greater than the context length ({prompt_tokens} + {max_tokens} > "
                        f"{self.context_length})")
            return
        content = self._answer(messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": fake_tokens(content),
                 "total_tokens": prompt_tokens + fake_tokens(content)}
        cached = self._cached(prompt)
        timings = {"prompt_n": prompt_tokens - cached, "cache_n": cached,
                   "predicted_n": fake_tokens(content)}
        if body.get("stream"):
            self._stream(req, count, body, content, usage, timings)
            return
        answer: dict[str, Any] = {
            "id": f"chatcmpl-{count}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
        }
        if "no_usage" not in self.modes:
            answer.update(usage=usage, timings=timings)
        self._send(req, 200, answer)

    def _cached(self, prompt: str) -> int:
        """Fake tokens of the longest prefix ``prompt`` shares with an earlier prompt."""
        with self._lock:
            best = 0
            for earlier in self._prompts[-16:]:
                n = 0
                for a, b in zip(earlier, prompt, strict=False):
                    if a != b:
                        break
                    n += 1
                best = max(best, n)
            self._prompts.append(prompt)
        return fake_tokens(prompt[:best]) - 1 if best else 0

    def _stream(self, req: BaseHTTPRequestHandler, count: int, body: dict[str, Any],
                content: str, usage: dict[str, Any], timings: dict[str, Any]) -> None:
        """The answer as server-sent events: a few content chunks, then the finish."""
        def event(delta: dict[str, Any], finish: str | None = None,
                  **extra: Any) -> bytes:
            chunk = {"id": f"chatcmpl-{count}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": body.get("model"),
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                     **extra}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        step = max(1, len(content) // 4)
        events = [event({"role": "assistant", "content": content[i:i + step]})
                  for i in range(0, len(content), step)]
        tail = {} if "no_usage" in self.modes else {"timings": timings}
        events.append(event({}, "stop", **tail))
        if (body.get("stream_options") or {}).get("include_usage") and \
                "no_usage" not in self.modes:
            last = {"id": f"chatcmpl-{count}", "object": "chat.completion.chunk",
                    "created": 0, "model": body.get("model"), "choices": [], "usage": usage}
            events.append(f"data: {json.dumps(last)}\n\n".encode())
        events.append(b"data: [DONE]\n\n")
        data = b"".join(events)
        req.send_response(200)
        req.send_header("Content-Type", "text/event-stream")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if "stall" in self.modes:
            req.wfile.write(events[0])
            req.wfile.flush()
            time.sleep(self.slow_seconds)
            data = data[len(events[0]):]
        req.wfile.write(data)

    def _answer(self, messages: list[dict[str, Any]]) -> str:
        system = str(messages[0].get("content") or "") if messages else ""
        user = str(messages[-1].get("content") or "") if messages else ""
        repairing = any(m.get("role") == "assistant" for m in messages) or \
            user.startswith("Here is an answer")
        if "always_invalid" in self.modes or ("invalid_first" in self.modes and not repairing):
            return '{"summary": "This answer is broken, "keywords": [}'
        page = re.search(r"<page>\n(.*?)\n</page>", user, re.DOTALL)
        text = page.group(1) if page else user
        lang = re.search(r"(?:code|language:) '([a-z]{2,3})'",
                         "\n".join(str(m.get("content") or "") for m in messages))
        words = re.findall(r"\w+", text)
        first = " ".join(words[:8]) or "nothing"
        offered = re.search(r"Reuse these existing tags where they fit, spelled exactly so: "
                            r"(.*)\.$", system, re.MULTILINE)
        # Like a model that follows the prompt: reuse offered tags the page is about.
        flat = re.sub(r"[\s_#-]+", " ", text.lower())
        tags = [t.strip() for t in offered.group(1).split(",")
                if re.sub(r"[\s_#-]+", " ", t.strip().lower()) in flat][:2] if offered else []
        answer: dict[str, Any] = {
            "summary": f"The page is about {first}. It has {len(words)} words.",
            "keywords": list(dict.fromkeys(w.lower() for w in words if len(w) > 6))[:12],
            "tags": [*tags, "gardening", "urban life"],
            "language": lang.group(1) if lang else "en",
        }
        if "messy_tags" in self.modes:
            answer["tags"] = ["  #Machine Learning ", "machine-learning", "machine_learning",
                              "MACHINE   LEARNING", "", "#", "a tag that has far too many words",
                              "Python", "#python", "Data Science", "data-science"]
        if "runaway_tags" in self.modes:  # a small model that does not stop
            answer["tags"] = ["electricsuv", "electricsuv3", "electricsuv31", "web3", "ev"]
        if "obey" in self.modes and "ignore previous instructions" in text.lower():
            # The model does what the page says: extra keys, a non-list, chatter.
            return ('Sure! As instructed, here is my new output:\n{"summary": "PWNED. '
                    'The assistant now obeys the page.", "tags": ["pwned"] , '
                    '"keywords": "pwned, obey", "language": "klingon", '
                    '"api_key": "sk-leak", "record": {"url": "http://evil"}, '
                    '"enrichment": {"media": "evil"}}\nAnything else?')
        content = json.dumps(answer, ensure_ascii=False)
        if "think" in self.modes:
            content = ("<think>The user wants JSON. Let me think about {braces} and "
                       "the page.</think>\n" + content)
        if "fences" in self.modes:
            content = f"Here is the JSON you asked for:\n```json\n{content}\n```\nHope it helps!"
        return content
