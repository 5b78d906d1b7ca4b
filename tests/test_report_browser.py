"""The report in a real browser: Debian's headless Chromium, driven by Playwright.

One run over about 30 pages of the shared corpus (failures included) feeds every
test here. Screenshots go to ``test-artifacts/report/`` (or
``$BOOKMARK_ENRICH_TEST_ARTIFACTS``) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bookmark_enrich.cache import ResultCache
from bookmark_enrich.report import write_report
from tests.conftest import skip_or_fail
from tests.report_support import HOSTILE_TITLE, real_run
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

ARTIFACTS = Path(os.environ.get("BOOKMARK_ENRICH_TEST_ARTIFACTS")
                 or Path(__file__).resolve().parents[1] / "test-artifacts") / "report"
CHARTS_OF_A_RUN = 8
"""Failures by reason, per minute, tags, keywords, languages, sites, content types, words."""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, pages: PageServer,
                _llm_session: LLMServer) -> Path:
    _llm_session.reset(flavor="lmstudio", modes=set(), latency=0.0, slow_seconds=5.0,
                       context_length=8192, models=["test-model-7b"])
    folder = tmp_path_factory.mktemp("report-browser")
    run = real_run(folder / "cache.sqlite", pages, _llm_session, corpus=30)
    target = folder / "report.html"
    with ResultCache(run.cache, readonly=True) as c:
        write_report(c, target, cache_path=str(run.cache))
    return target


@pytest.fixture(scope="module")
def browser(report_file: Path) -> Iterator[Any]:
    # After the run: Playwright's sync API keeps an event loop running in this thread.
    executable = _chromium()
    if executable is None:
        skip_or_fail("no chromium here (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


class Loaded:
    def __init__(self, page: Any, console: list[str], requests: list[str]) -> None:
        self.page, self.console, self.requests = page, console, requests


def _open(browser: Any, report: Path, width: int, **kw: Any) -> Loaded:
    page = browser.new_page(viewport={"width": width, "height": 900}, **kw)
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    return Loaded(page, console, requests)


@pytest.mark.parametrize("width", [1280, 390])
def test_report_loads_offline_and_renders(browser: Any, report_file: Path, width: int) -> None:
    loaded = _open(browser, report_file, width)
    page = loaded.page
    assert loaded.console == []
    assert loaded.requests == [report_file.as_uri()]  # the file itself, nothing else
    charts = page.locator("svg.chart")
    assert charts.count() == CHARTS_OF_A_RUN
    for i in range(charts.count()):
        chart = charts.nth(i)
        assert chart.locator("rect").count() > 0
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 15
        assert box["width"] <= width  # nothing wider than a phone screen
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{width}.png"), full_page=True)
    page.close()


def test_failures_table_filters(browser: Any, report_file: Path) -> None:
    page = _open(browser, report_file, 1280).page
    rows = page.locator("#failed-bookmarks tbody tr")
    total = rows.count()
    assert total >= 5
    assert page.locator("#failure-filters").is_visible()
    page.select_option("#f-reason", "not_found")
    visible = page.locator("#failed-bookmarks tbody tr:not(.hide)")
    assert 0 < visible.count() < total
    for i in range(visible.count()):
        assert visible.nth(i).get_attribute("data-reason") == "not_found"
    page.select_option("#f-reason", "")
    page.fill("#f-text", "refused-too")
    # The dead bookmark's rows only: its fetch failed (and its archive look-up, if any).
    assert visible.count() >= 1
    for i in range(visible.count()):
        assert "refused-too" in visible.nth(i).inner_text()
    page.select_option("#f-stage", "fetch")
    assert visible.count() == 1
    page.select_option("#f-stage", "")
    page.fill("#f-text", "")
    page.select_option("#f-stage", "fetch")
    assert visible.count() == page.locator('#failed-bookmarks tbody tr[data-stage="fetch"]').count()
    for i in range(visible.count()):
        assert visible.nth(i).get_attribute("data-stage") == "fetch"
    page.close()


def test_hostile_title_is_shown_as_text(browser: Any, report_file: Path) -> None:
    page = _open(browser, report_file, 1280).page
    assert page.evaluate("window.__pwned") is None
    cell = page.locator("#failed-bookmarks").get_by_text(HOSTILE_TITLE, exact=True)
    assert cell.count() == 1  # the archive is off in tests: one failed stage, one row
    assert page.locator("#failed-bookmarks img").count() == 0
    page.close()


def test_reads_without_javascript_and_in_dark_mode(browser: Any, report_file: Path) -> None:
    loaded = _open(browser, report_file, 1280, java_script_enabled=False,
                   color_scheme="dark")
    page = loaded.page
    assert not page.locator("#failure-filters").is_visible()  # no dead controls
    assert page.locator("#failed-bookmarks tbody tr:visible").count() >= 5
    assert page.locator("svg.chart").count() == CHARTS_OF_A_RUN
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-dark-nojs.png"), full_page=True)
    page.close()
