"""`report` and `run --report/--metrics-file`: the page's content, its safety, the metrics file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.cli import app
from bookmark_enrich.report import write_report
from bookmark_enrich.report.page import _link
from tests.report_support import HOSTILE_TITLE, SECRET_KEY, ReportRun, real_run
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

runner = CliRunner()


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory, pages: PageServer,
            _llm_session: LLMServer) -> Iterator[ReportRun]:
    _llm_session.reset(flavor="lmstudio", modes=set(), latency=0.0, slow_seconds=5.0,
                       context_length=8192, models=["test-model-7b"])
    folder = tmp_path_factory.mktemp("report-run")
    yield real_run(folder / "cache.sqlite", pages, _llm_session, corpus=8)


def _html(run: ReportRun, tmp_path: Path, **kw: object) -> str:
    target = tmp_path / "report.html"
    with ResultCache(run.cache, readonly=True) as c:
        write_report(c, target, cache_path=str(run.cache), **kw)  # type: ignore[arg-type]
    return target.read_text()


def test_report_shows_every_section_of_a_run(one_run: ReportRun, tmp_path: Path) -> None:
    html = _html(one_run, tmp_path)
    for section in ("overview", "stages", "failures", "dead", "time", "collection", "llm"):
        assert f'<section id="{section}">' in html
    dead = html.split('<section id="dead">')[1].split("</section>")[0]
    assert "not_found" in dead and "<span>not rescued</span>" in dead
    assert "bookmark-enrich report: run 1" in html
    assert "bookmark-enrich retry --stage fetch --reason not_found --cache" in html
    assert "test-model-7b" in html  # the summarizer and model
    assert re.search(r"<b>[\d,]+</b><span>tokens in</span>", html)
    assert html.count("<svg") >= 6 and html.count("<table") >= html.count("<svg")


def test_report_is_self_contained_and_escapes_hostile_content(one_run: ReportRun,
                                                               tmp_path: Path) -> None:
    html = _html(one_run, tmp_path)
    assert HOSTILE_TITLE not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert 'http-equiv="Content-Security-Policy"' in html and "default-src &#x27;none&#x27;" \
        in html
    # One inline style and one inline script; nothing loaded from anywhere.
    assert html.count("<script") == 1 and html.count("<style") == 1
    assert not re.search(r"""\s(src|href)=["']?(https?:)?//""", html.split("<main>")[0])
    assert "<link" not in html and " src=" not in html.replace("src=x", "")
    assert SECRET_KEY not in html and "********" in html


def test_only_web_urls_become_links() -> None:
    assert _link("javascript:alert(1)") == "javascript:alert(1)"
    assert _link("JaVaScRiPt:alert(1)").startswith("JaVaScRiPt")
    assert _link('https://e.org/"><b>') == ('<a href="https://e.org/&quot;&gt;&lt;b&gt;" '
                                            'rel="noopener noreferrer nofollow">'
                                            "https://e.org/&quot;&gt;&lt;b&gt;</a>")


def test_failure_table_is_capped(one_run: ReportRun, tmp_path: Path) -> None:
    html = _html(one_run, tmp_path, failures_limit=2)
    table = html.split('id="failed-bookmarks"')[1].split("</table>")[0]
    assert table.count("<tr data-stage=") == 2
    assert "The first 2 of" in html


def test_report_command_on_an_empty_cache(tmp_path: Path) -> None:
    cache = tmp_path / "none.sqlite"
    result = runner.invoke(app, ["report", "--cache", str(cache), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Nothing to report yet" in (tmp_path / "r.html").read_text()
    assert not cache.exists()  # a report never creates a cache


def test_report_command_choices(one_run: ReportRun, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    bad = runner.invoke(app, ["report", "--cache", str(one_run.cache), "--run", "99",
                              "-o", str(out)])
    assert bad.exit_code == 2 and "no run 99" in bad.output and "Traceback" not in bad.output
    both = runner.invoke(app, ["report", "--cache", str(one_run.cache), "--run", "1", "--all"])
    assert both.exit_code == 2 and "choose one" in both.output
    nowhere = runner.invoke(app, ["report", "--cache", str(one_run.cache),
                                  "-o", str(tmp_path / "missing" / "r.html")])
    assert nowhere.exit_code == 2 and "cannot write the report" in nowhere.output
    ok = runner.invoke(app, ["report", "--cache", str(one_run.cache), "--run", "1",
                             "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.stat().st_mode & 0o077 == 0  # private, like the cache
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left


def test_report_all_over_five_runs(pages: PageServer, tmp_path: Path) -> None:
    cache = tmp_path / "many.sqlite"
    for i in range(5):
        urls = [pages.url(f"/article/many{i}"), pages.url(f"/status/{404 if i % 2 else 500}")]
        result = runner.invoke(app, ["run", "-", "--cache", str(cache), "-q", "--no-summary",
                                     "--no-media", "--retries", "0"],
                               input="\n".join(urls) + "\n")
        assert result.exit_code == 1, result.output
    out = tmp_path / "all.html"
    result = runner.invoke(app, ["report", "--all", "--cache", str(cache), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "report: the whole cache" in html and "Bookmarks per run" in html
    per_run = html.split("Bookmarks per run (data)")[1].split("</table>")[0]
    assert per_run.count("<tr>") == 1 + 5  # the header and one row per run


def _metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_run_writes_metrics_and_report_matching_status(pages: PageServer,
                                                       tmp_path: Path) -> None:
    cache, prom, page = tmp_path / "c.sqlite", tmp_path / "run.prom", tmp_path / "run.html"
    urls = [pages.url("/article/m1"), pages.url("/article/m2"), pages.url("/status/404")]
    result = runner.invoke(app, ["run", "-", "--cache", str(cache), "-q", "--no-summary",
                                 "--no-media", "--retries", "0",
                                 "--metrics-file", str(prom), "--report", str(page)],
                           input="\n".join(urls) + "\n")
    assert result.exit_code == 1, result.output
    assert "<section id=\"failures\">" in page.read_text()
    m = _metrics(prom)
    status = json.loads(runner.invoke(app, ["status", "--json", "--cache", str(cache)]).output)
    last = status["runs"][0]
    for name in ("ok", "partial", "failed", "cached"):
        assert m[("bookmark_enrich_bookmarks_total", (("status", name),))] == last[name]
    rates = {s["stage"]: s for s in status["stages"]}
    assert m[("bookmark_enrich_stage_results_total",
              (("reason", "not_found"), ("stage", "fetch"), ("status", "failed")))] == \
        rates["fetch"]["failed"] == 1
    assert m[("bookmark_enrich_stage_results_total",
              (("reason", ""), ("stage", "fetch"), ("status", "ok")))] == rates["fetch"]["ok"]
    assert m[("bookmark_enrich_run_duration_seconds", ())] == pytest.approx(
        last["duration_s"], abs=0.01)
    assert m[("bookmark_enrich_last_success_timestamp_seconds", ())] > 0
    assert ("bookmark_enrich_llm_tokens_total", (("kind", "prompt"),)) in m
    assert ("bookmark_enrich_media_stored_bytes_total", ()) in m
    assert prom.stat().st_mode & 0o777 == 0o644  # node_exporter reads it


def test_metrics_count_llm_tokens(one_run: ReportRun, tmp_path: Path) -> None:
    from bookmark_enrich.report import write_run_metrics

    prom = tmp_path / "llm.prom"
    with ResultCache(one_run.cache, readonly=True) as c:
        write_run_metrics(c, None, prom)
    m = _metrics(prom)
    assert m[("bookmark_enrich_llm_calls_total", ())] >= 8
    assert m[("bookmark_enrich_llm_tokens_total", (("kind", "prompt"),))] > 0
    assert m[("bookmark_enrich_llm_tokens_total", (("kind", "completion"),))] > 0


def test_collection_figures_survive_odd_summaries(tmp_path: Path) -> None:
    from bookmark_enrich.models import Bookmark, StageOutcome
    from bookmark_enrich.report import choose_scope
    from bookmark_enrich.report.collection import collection, llm_figures, summarizers

    outputs: list[dict[str, object]] = [
        {"tags": ["a", "b", "c"], "keywords": ["k"], "summarizer": "llm", "model": "m",
         "llm": {"calls": 2, "prompt_tokens": 10, "completion_tokens": 3, "parts": 2,
                 "latency_ms": [100, 300]}},
        {"tags": ["a", "b", {"x": 1}, 7], "keywords": "not a list", "model": {"odd": 1},
         "llm": "not an object"},
        {"tags": ["a", "c"], "keywords": [["nested"], "k"],
         "llm": {"calls": True, "latency_ms": [200, "slow"]}},
        {"tags": None},
    ]
    cache_path = tmp_path / "odd.sqlite"
    with ResultCache(cache_path) as c:
        run = c.start_run("odd.jsonl", "jsonl", {})
        for i, output in enumerate(outputs):
            url = f"https://h{i}.example/p"
            c.put(Bookmark(url=url, normalized=url, key=f"k{i}", record={"url": url},
                           position=i), {"summarize": StageOutcome.ok(output)}, run, "odd")
        c.finish_run(run, "finished", {"total": 4, "ok": 4})
    with ResultCache(cache_path, readonly=True) as c:
        scope = choose_scope(c)
        assert scope is not None
        doc = collection(c, scope)
        llm = llm_figures(c, scope)
        models = summarizers(c, scope)
    assert doc["tags"] == [{"name": "a", "count": 3}, {"name": "b", "count": 2},
                           {"name": "c", "count": 2}]
    assert doc["keywords"] == [{"name": "k", "count": 2}]
    assert doc["pairs"] == [{"first": "a", "second": "b", "count": 2},
                            {"first": "a", "second": "c", "count": 2},
                            {"first": "b", "second": "c", "count": 1}]
    assert {(m["summarizer"], m["model"]): m["count"] for m in models} == {
        ("llm", "m"): 1, (None, None): 3}
    assert (llm["pages"], llm["calls"], llm["tokens_in"], llm["chunked"]) == (2, 2, 10, 1)
    assert (llm["latency_median_ms"], llm["latency_p95_ms"]) == (200, 300)
