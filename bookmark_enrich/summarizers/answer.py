"""The LLM's answer: found in whatever the model wrote, closed if cut off, validated.

Also :func:`split_text`, which cuts a long page into parts for ``--llm-full-text``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..services.llm import estimate_tokens
from ..tags import tag_identity
from .prompt import MAX_KEYWORDS

__all__ = ["SENTENCE_END", "AnswerError", "SummaryAnswer", "language_code", "parse_answer",
           "split_text"]


# ---------------------------------------------------------------------- the answer
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_LANG_CODE = re.compile(r"^[a-z]{2,3}$")
_LANG_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr",
    "spanish": "es", "español": "es", "italian": "it", "portuguese": "pt", "dutch": "nl",
    "russian": "ru", "chinese": "zh", "japanese": "ja", "korean": "ko", "polish": "pl",
}


def language_code(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower().replace("_", "-")
    primary = value.split("-")[0]
    if _LANG_CODE.match(primary):
        return primary
    return _LANG_NAMES.get(value)


class SummaryAnswer(BaseModel):
    """What the model must return. Extra keys are dropped, lists are trimmed to size."""

    model_config = ConfigDict(extra="ignore")

    summary: str
    keywords: list[str] = []
    tags: list[str] = []
    language: str | None = None

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        lines = [" ".join(line.split()) for line in value.splitlines() if line.strip()]
        if len(lines) > 1 and all(line[:1] in "-*•" for line in lines):
            value = "\n".join("- " + line.lstrip("-*• ") for line in lines)  # bullets
        else:
            value = " ".join(value.split())
        if len(value) < 10:
            raise ValueError("summary must be a sentence or more")
        return value[:2000]

    @field_validator("keywords", "tags", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if isinstance(value, str):  # "a, b, c" from models that ignore the schema
            return [part for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [str(v) for v in value if isinstance(v, str | int | float)]
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for word in value:
            word = " ".join(word.split()).strip("#,;. ")
            ident = tag_identity(word)
            if word and ident and ident not in seen and len(word) <= 80:
                seen.add(ident)
                out.append(word)
        return out[:MAX_KEYWORDS]

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> str | None:
        return language_code(value) if isinstance(value, str) else None


class AnswerError(ValueError):
    """The model's answer is not a JSON object of the expected shape."""


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def parse_answer(content: str) -> SummaryAnswer:
    """Find and validate the JSON object in an answer.

    Tolerates ``<think>`` blocks (closed, or only their closing tag), Markdown
    fences and text around the object.
    """
    text = _THINK.sub("", content)
    lower = text.lower()
    if "</think>" in lower:  # the template swallowed the opening tag
        text = text[lower.rindex("</think>") + len("</think>"):]
    elif "<think>" in lower:  # ran out of tokens while thinking: nothing after it counts
        text = text[: lower.index("<think>")]
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    problem = "no JSON object found in the answer"
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError as exc:
                problem = f"invalid JSON: {exc.msg} at character {exc.pos}"
            else:
                if isinstance(obj, dict):
                    try:
                        return SummaryAnswer.model_validate(obj)
                    except ValidationError as exc:
                        err = exc.errors()[0]
                        field = ".".join(str(p) for p in err["loc"]) or "object"
                        problem = f"field {field!r}: {err['msg']}"
            start = candidate.find("{", start + 1)
    closed = _close_json(text)
    if closed is not None:
        with_closers = parse_closed(closed)
        if with_closers is not None:
            return with_closers
    raise AnswerError(problem)


def parse_closed(text: str) -> SummaryAnswer | None:
    try:
        obj = json.loads(text)
        return SummaryAnswer.model_validate(obj) if isinstance(obj, dict) else None
    except (ValueError, ValidationError):
        return None


def _close_json(text: str) -> str | None:
    """An answer cut off mid-object (``max_tokens``), closed: the open string, arrays
    and objects. None when there is no object to close."""
    start = text.find("{")
    if start == -1:
        return None
    stack: list[str] = []
    in_string = escaped = False
    body = text[start:].rstrip()
    for char in body:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    if not stack:
        return None
    body = body.rstrip("\\") + ('"' if in_string else "")
    body = re.sub(r'[,:]\s*$|,\s*"[^"]*"\s*$', "", body)  # a dangling key or comma
    return body + "".join(reversed(stack))


def split_text(text: str, budget: int) -> list[str]:
    """Split on paragraph boundaries into pieces of at most ``budget`` estimated tokens.

    A paragraph too long on its own is split on sentences, and a sentence too long
    on its own on characters.
    """
    pieces: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text):
        para = para.strip()
        if not para:
            continue
        if estimate_tokens(para) <= budget:
            pieces.append(para)
            continue
        for sentence in SENTENCE_END.split(para):
            if estimate_tokens(sentence) <= budget:
                pieces.append(sentence)
            else:
                # Worst case 4 bytes a character keeps each cut under the budget.
                step = max(1, 3 * (budget - 1) // 4)
                pieces.extend(sentence[i:i + step] for i in range(0, len(sentence), step))
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        cost = estimate_tokens(piece) + 1
        if current and size + cost > budget:
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(piece)
        size += cost
    if current:
        chunks.append("\n\n".join(current))
    return chunks
