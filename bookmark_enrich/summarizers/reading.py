"""What the LLM reads of a page: its head, then its most informative sentences.

A page longer than the input budget (``--llm-input-tokens``) is never cut at the
head alone: the budget takes the lead (the first paragraph, up to a quarter of the
budget), then the sentences the built-in summarizer ranks most central (TextRank),
until the budget is spent, and gives them back in page order. The title and the
description go into the prompt beside the text.
"""

from __future__ import annotations

from ..services.llm import estimate_tokens
from .builtin import MAX_RANKED_SENTENCES, rank_sentences, split_sentences

__all__ = ["select_text"]


def select_text(text: str, budget: int, language: str | None = None) -> str:
    """``text`` itself when it fits ``budget`` tokens, else its lead and best sentences."""
    if estimate_tokens(text) <= budget:
        return text
    paragraphs = [p.strip() for p in text.splitlines() if p.strip()]
    lead: list[str] = []
    spent = 0
    for para in paragraphs[:3]:
        cost = estimate_tokens(para) + 1
        if spent + cost > budget // 4:
            break
        lead.append(para)
        spent += cost
    rest = "\n".join(paragraphs[len(lead):])
    sentences = split_sentences(rest)[:MAX_RANKED_SENTENCES]
    if not sentences:
        return "\n".join(lead) or text[: 3 * budget]
    scores = rank_sentences(sentences, language)
    chosen: set[int] = set()
    for i in sorted(range(len(sentences)), key=lambda i: (-scores[i], i)):
        cost = estimate_tokens(sentences[i]) + 1
        if spent + cost > budget:
            continue
        chosen.add(i)
        spent += cost
    picked = [sentences[i] for i in sorted(chosen)]
    if not lead and not picked:  # one giant sentence: its start is all there is room for
        return text[: 3 * budget]
    return "\n".join([*lead, " ".join(picked)]) if picked else "\n".join(lead)
