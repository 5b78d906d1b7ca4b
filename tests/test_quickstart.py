"""The README's quickstart, exactly as written, on a machine with no network and no servers."""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from bookmark_enrich import open_source
from bookmark_enrich.models import Bookmark
from bookmark_enrich.sources import iter_bookmarks
from tests.helpers import jsonl

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def quickstart_commands() -> list[str]:
    """The commands of the first ``console`` block under ``## Quickstart``."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README has no '## Quickstart' section"
    block = re.search(r"```console\n(.*?)```", section.group(1), re.DOTALL)
    assert block, "the quickstart has no console block"
    return [line.strip() for line in block.group(1).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def page_text(path: Path) -> str:
    """The visible words of a page, whitespace collapsed (to find summary sentences in)."""
    body = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return " ".join(html.unescape(body).split())


def test_readme_quickstart_runs_offline(tmp_path: Path) -> None:
    install, run = quickstart_commands()
    # Installing into a fresh venv takes minutes; the suite runs from that install already.
    assert install in ("pip install .", "pip install -e ."), install
    argv = shlex.split(run)
    assert argv[:2] == ["bookmark-enrich", "run"], run
    script = Path(sys.executable).parent / "bookmark-enrich"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bookmark_enrich"]

    clean = tmp_path / "clone"  # a fresh directory holding what the commands read
    shutil.copytree(ROOT / "examples", clean / "examples")
    shutil.copy(README, clean / "README.md")
    # No LLM probes at the real default ports: a developer's own LM Studio must not
    # change this test (tests/test_discovery.py covers those ports).
    env = {**os.environ,
           "BOOKMARK_ENRICH_LLM_PROBE_URLS": json.dumps([f"http://127.0.0.1:{closed_port()}/v1"])}
    proc = subprocess.run([*command, *argv[1:]], cwd=clean, env=env, capture_output=True,
                          timeout=180, check=False)
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    # The run's first line says which summarizer was chosen; the media choice follows.
    opening = stderr.splitlines()[:2]
    assert opening[0].startswith("summarizer: built-in"), stderr
    assert opening[1].startswith("media:"), stderr

    records = jsonl(proc.stdout)
    listed = [line for line in (clean / argv[2]).read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert len(records) == len(listed) >= 3
    languages = set()
    for record in records:
        e = record["enrichment"]
        assert record["status"] == "ok", record
        assert (e["summarizer"], e["model"]) == ("builtin", None)
        source = page_text(Path(record["url"].removeprefix("file://")))
        summary = e["summary"]
        assert len(summary) > 80
        assert summary[:60] in source  # real sentences of the page
        assert len(e["keywords"]) >= 3 and len(e["tags"]) >= 1
        languages.add(e["language"])
    assert {"en", "de"} <= languages and len(languages) >= 3


def test_examples_web_export_is_a_browser_export_with_a_video() -> None:
    src = open_source(str(ROOT / "examples" / "bookmarks-web.html"))
    try:
        assert src.format_name == "netscape"
        urls = [b.url for b in iter_bookmarks(src) if isinstance(b, Bookmark)]
    finally:
        src.close()
    assert len(urls) >= 5
    assert all(u.startswith("https://") for u in urls)
    assert any("youtube.com/watch" in u for u in urls)
    pages = (ROOT / "examples" / "pages").glob("*.html")
    assert any("youtube.com/watch" in p.read_text(encoding="utf-8") for p in pages)
