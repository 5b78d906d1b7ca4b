"""Issue 20: slots kept full, a cacheable prompt, tokens on purpose, prompts users shape.

Against the fake OpenAI-compatible server (tests/servers/llm.py), which streams, reports
``usage`` and llama.cpp ``timings``, and answers 503 when its slots are full.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bookmark_enrich.events import RunStats
from bookmark_enrich.services.llm import LLMClient
from bookmark_enrich.services.llmslots import SlotLimiter
from bookmark_enrich.settings import load_settings
from bookmark_enrich.summarizers.answer import parse_answer
from bookmark_enrich.summarizers.prompt import GUIDANCE, PromptBuilder, VocabularySteps
from bookmark_enrich.summarizers.reading import select_text
from tests.helpers import run_library
from tests.servers.llm import MODEL, LLMServer
from tests.servers.pages import ARTICLES, PageServer


def summarize(lines: list[str], **settings: Any) -> tuple[list[dict[str, Any]], RunStats]:
    settings.setdefault("enable_ai_summarization", True)
    records, stats = run_library(lines, **settings)
    return sorted(records, key=lambda r: r["position"]), stats


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["response_format"]["json_schema"]["schema"])


# ------------------------------------------------------------------ concurrency
class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answers(limiter: SlotLimiter, clock: Clock, lengths: list[int],
            tokens_per_second: float) -> None:
    """Answers of these lengths, ``limiter.limit`` generated at once at this total rate;
    each was sent ``limit`` answer-times of its own before it arrived, so the first after
    a change of limit were sent under the old one."""
    for tokens in lengths:
        took = tokens / tokens_per_second
        clock.now += took
        limiter.done(took * limiter.limit, tokens)


def test_auto_judges_a_step_by_tokens_per_second_not_by_answers_that_happen_to_be_short(
        ) -> None:
    # Answers 3-5x apart in length: counted as answers, the second window (short ones)
    # looks 2.5x faster; in tokens it is no faster, so the step is taken back.
    clock = Clock()
    limiter = SlotLimiter("auto", clock=clock)  # a server that does not report slots
    assert (limiter.limit, limiter.adapting) == (2, True)
    answers(limiter, clock, [500, 400, 500, 450, 500, 400, 450, 500], 30.0)
    assert limiter.limit == 3
    answers(limiter, clock, [120, 150, 100, 160, 120, 140, 110, 150, 130, 100, 120, 150], 30.5)
    assert (limiter.limit, limiter.adapting) == (2, False)
    assert "no more throughput" in limiter.describe()
    # Requests sent before a limit changed do not count towards its window.
    limiter = SlotLimiter("auto", clock=clock)
    answers(limiter, clock, [300] * 8, 30.0)
    assert limiter.limit == 3
    limiter.done(60.0, 300)  # sent a minute ago, under limit 2
    assert limiter._window.done == 0
    answers(limiter, clock, [300] * 12, 45.0)  # 1.5x: kept, and one more
    assert (limiter.limit, limiter.adapting) == (4, True)


def test_props_that_do_not_say_kv_unified_start_at_the_fit_and_may_climb_to_the_slots(
        ) -> None:
    # llama.cpp's default: 4 slots sharing 8,192 tokens; /props says n_ctx 8192 and
    # nothing about sharing. Three requests fit a shared cache: start there, then climb.
    client = LLMClient(load_settings(llm_concurrency="auto"), "http://127.0.0.1:9/v1")
    clock = Clock()
    client.limiter.clock = clock
    client._read_props({"default_generation_settings": {"n_ctx": 8192}, "total_slots": 4})
    client.size_concurrency(2600)
    limiter = client.limiter
    assert (limiter.limit, limiter.ceiling, limiter.adapting) == (3, 4, True)
    assert "does not say" in limiter.describe()
    answers(limiter, clock, [300] * 12, 30.0)  # a first window at 3
    answers(limiter, clock, [300] * 16, 40.0)  # 4 in flight: a third more, kept
    assert limiter.limit == 4
    # Real llama-server --parallel 4 --ctx-size 16384: each slot has its own 4,096
    # tokens and /props says n_ctx 4096. Shared, that would hold one request and make
    # the slots pointless: taken as each slot's own, so all four.
    client._read_props({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 4})
    client.size_concurrency(2600)
    assert (limiter.limit, limiter.ceiling, limiter.adapting) == (4, 4, False)
    assert "4096 tokens each" in limiter.describe()
    limiter.overflow()  # if it was shared after all, the first overflow says so
    assert (limiter.limit, limiter.ceiling) == (3, 3)
    client._read_props({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 4,
                        "kv_unified": True})
    client.size_concurrency(2600)
    assert (limiter.limit, limiter.ceiling, limiter.adapting) == (1, 1, False)


def test_a_context_overflow_while_climbing_caps_the_limit() -> None:
    limiter = SlotLimiter("auto")
    limiter.server_slots(4, 2, "4 slots", fit_known=False)
    assert (limiter.limit, limiter.ceiling) == (2, 4)
    limiter.overflow()
    assert (limiter.limit, limiter.ceiling, limiter.adapting) == (1, 1, False)


@pytest.mark.parametrize(("slots", "bookmarks"), [(1, 8), (2, 40)])
def test_auto_backs_off_on_busy_and_settles_at_the_slots(
        pages: PageServer, llm: LLMServer, slots: int, bookmarks: int) -> None:
    # The back-off check is 2 slots, a 503 when both are busy: auto starts at 2
    # (the server does not report slots), climbs while throughput rises, meets the 503
    # and settles at the slots with no bookmark failed.
    llm.reset(flavor="openai", slots=slots, latency=0.02 if slots == 1 else 0.05)
    urls = [pages.url(f"/article/busy{slots}-{i}") for i in range(bookmarks)]
    records, stats = summarize(urls)
    assert {r["status"] for r in records} == {"ok"}  # nobody failed on a 503
    assert llm.busy_answers >= 1 and llm.peak == slots
    assert stats.metrics["summarize"]["llm concurrency"] == slots
    llm.reset(slots=None)


def test_llamacpp_props_set_the_concurrency_and_the_cache_is_reused(
        pages: PageServer, llm: LLMServer) -> None:
    llm.reset(flavor="llamacpp", slots=4, context_length=8192)
    urls = [pages.url(f"/article/props{i}") for i in range(6)]
    records, stats = summarize(urls)
    assert {r["status"] for r in records} == {"ok"}
    figures = stats.metrics["summarize"]
    assert figures["llm concurrency"] == 3  # 3 full-size requests fit the shared 8192
    assert int(figures["cached prompt share"].rstrip("%")) >= 30
    assert "+" in figures["median tokens/bookmark"]
    # The prefix is byte-identical but for one vocabulary step (none, then the first tags).
    assert len({b["messages"][0]["content"] for b in llm.chat_requests}) <= 2
    for body in llm.chat_requests:
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
    llm.reset(slots=None)


def test_context_overflow_is_retried_with_less(pages: PageServer, llm: LLMServer) -> None:
    llm.modes = {"overflow_once"}
    records, _ = summarize([pages.url("/article/ovf")])
    assert records[0]["status"] == "ok"
    assert len(llm.chat_requests) == 2


def test_a_stalled_answer_is_a_timeout(pages: PageServer, llm: LLMServer) -> None:
    llm.reset(modes={"stall"}, slow_seconds=3.0)
    records, _ = summarize([pages.url("/article/stall")], llm_timeout=0.5, retries=0)
    assert records[0]["errors"][0]["reason"] == "timeout"
    assert "no new token" in records[0]["errors"][0]["message"]


# --------------------------------------------------------------------- prompts
def test_prompt_settings_shape_the_request(pages: PageServer, llm: LLMServer,
                                           tmp_path: Path) -> None:
    template = tmp_path / "prompt.txt"
    template.write_text("You are a terse librarian. Tags to reuse: {vocabulary}\n"
                        "Title: {title}\nLanguage: {language}\n<page>\n{text}\n</page>\n")
    allowed = tmp_path / "tags.txt"
    allowed.write_text("# house tags\nGardening\nCooking\n")
    records, _ = summarize([pages.url("/article/shape")], prompt_file=template,
                           tag_list=allowed, summary_sentences=2, summary_style="bullets")
    body = llm.chat_requests[0]
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert system.startswith("You are a terse librarian. Tags to reuse: Gardening, Cooking")
    assert "up to 2 bullet points" in system
    assert user.startswith("Title: ") and "<page>" in user and "librarian" not in user
    schema = schema_of(body)
    assert schema["properties"]["summary"]["maxLength"] == 400
    assert schema["properties"]["tags"]["items"]["enum"] == ["Gardening", "Cooking"]
    # The fake answers "gardening" and "urban life": only the listed one stays, as listed.
    assert records[0]["enrichment"]["tags"] == ["Gardening"]


def test_tag_style_and_tag_model(pages: PageServer, llm: LLMServer) -> None:
    llm.models = [MODEL, "tagger"]
    records, _ = summarize([pages.url("/article/kebab")], lm_studio_model=MODEL,
                           tag_style="kebab-case", tag_model="tagger")
    assert records[0]["enrichment"]["tags"] == ["gardening", "urban-life"]
    first, second = llm.chat_requests
    assert first["model"] == MODEL and "tags" not in schema_of(first)["properties"]
    assert second["model"] == "tagger" and list(schema_of(second)["properties"]) == ["tags"]
    assert "kebab-case" in second["messages"][0]["content"]


def test_changing_the_prompt_reruns_only_summarize(pages: PageServer,
                                                  llm: LLMServer) -> None:
    urls = [pages.url("/article/pc1"), pages.url("/article/pc2")]
    summarize(urls)
    page_hits = sum(pages.hits[f"/article/pc{i}"] for i in (1, 2))
    llm.reset()
    records, _ = summarize(urls, summary_sentences=2)
    assert sum(pages.hits[f"/article/pc{i}"] for i in (1, 2)) == page_hits
    assert all(not r["stages"]["summarize"]["cached"] for r in records)
    assert all(r["stages"]["fetch"]["cached"] for r in records)
    assert len(llm.chat_requests) == 2
    llm.reset()
    summarize(urls, summary_sentences=2)
    assert llm.chat_requests == []  # the same prompt: all from the cache


def test_input_budget_reads_the_lead_and_the_best_sentences(pages: PageServer,
                                                           llm: LLMServer) -> None:
    body = "".join(f"<p>Paragraph {i}. {ARTICLES['en'][1]}</p>" for i in range(30))
    url = pages.add("longread", f'<html lang="en"><head><title>Long</title></head><body>'
                    f"<article><h1>Long</h1>{body}</article></body></html>")
    records, _ = summarize([url], llm_input_tokens=300)
    assert records[0]["status"] == "ok"
    assert len(llm.chat_requests) == 1
    user = llm.chat_requests[0]["messages"][1]["content"]
    page = user.split("<page>\n", 1)[1]
    assert len(page.encode()) <= 3 * 300 + 20
    assert "Paragraph 0." in page  # the lead comes first


# ------------------------------------------------------------------------ units
def test_select_text_keeps_short_text_and_never_only_cuts_the_head() -> None:
    assert select_text("Short text.", 100) == "Short text."
    sentences = [f"Sentence number {i} talks about gardens and tomatoes in the city."
                 for i in range(200)]
    text = "Lead paragraph here.\n" + " ".join(sentences) + \
        "\nClosing thoughts about city gardens and tomatoes and gardens."
    chosen = select_text(text, 200, "en")
    assert chosen.startswith("Lead paragraph here.")
    assert len(chosen.encode()) <= 3 * 200


def test_vocabulary_changes_in_steps() -> None:
    steps = VocabularySteps(every=100)
    first = steps.offer(["a", "b", "c"])
    assert first == ["a", "b", "c"]
    assert steps.offer(["a", "b", "c", "d"]) == first  # one new tag: no step
    assert steps.offer(["a", "b", "c", "d", "e", "f"]) == ["a", "b", "c", "d", "e", "f"]
    assert steps.steps == 2


def test_a_cut_off_answer_is_closed() -> None:
    cut = json.dumps({"summary": "A page about gardens. It is long.",
                      "keywords": ["garden", "tomato"], "tags": ["gardening"]})[:-12]
    answer = parse_answer(cut)
    assert answer.summary == "A page about gardens. It is long."
    assert answer.keywords == ["garden", "tomato"]


def test_the_guidance_is_cached_prefix_and_gives_way_to_a_small_context() -> None:
    prompt = PromptBuilder(load_settings())
    fingerprint = prompt.fingerprint()
    system, user = prompt.messages("Body.", {"title": "T"}, language=None, vocabulary=[])
    assert GUIDANCE in str(system["content"]) and GUIDANCE not in str(user["content"])
    prompt.fit_context(8192)
    assert GUIDANCE in str(prompt.messages("", {}, language=None,
                                           vocabulary=[])[0]["content"])
    prompt.fit_context(2048)  # it would crowd out the page: left out, the rest as before
    small = str(prompt.messages("", {}, language=None, vocabulary=[])[0]["content"])
    assert "How to write each part" not in small and "untrusted data" in small
    assert prompt.fingerprint() == fingerprint  # the same model and settings: no re-run


def test_a_prompt_file_gets_no_guidance(tmp_path: Path) -> None:
    template = tmp_path / "prompt.txt"
    template.write_text("Describe it briefly.\n{text}\n")
    prompt = PromptBuilder(load_settings(prompt_file=template))
    system = str(prompt.messages("Body.", {}, language=None, vocabulary=[])[0]["content"])
    assert system.startswith("Describe it briefly.") and GUIDANCE not in system

